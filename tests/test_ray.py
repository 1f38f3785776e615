"""The Ray engine (``--engine ray``) on a local Ray started here: the same index as the local
engine, for files and for multistream dumps, from the library and from the command line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'simtools[ray]')")
pytest.importorskip("mwparserfromhell")

from click.testing import CliRunner  # noqa: E402

from simtools.data import read_documents  # noqa: E402
from simtools.encoders import make_encoder  # noqa: E402
from simtools.index import Index  # noqa: E402
from simtools.index.build import build_index  # noqa: E402
from simtools.index.build_ray import build_files_ray  # noqa: E402
from simtools.index.shards_store import is_sharded  # noqa: E402
from simtools.wiki.build import build_dump_index  # noqa: E402
from tests.test_multistream import numbered, same_index, synthetic  # noqa: E402

#: a file whose presence makes the next actor that meets it exit (tests/ray_faults.py)
KILL_MARKER = Path(tempfile.gettempdir()) / f"simtools-test-kill-{os.getpid()}"


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module, of as many CPUs as the builds have actors."""
    root = str(Path(__file__).resolve().parents[1])  # so that actors import tests.ray_faults
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": root,
                                       "SIMTOOLS_TEST_KILL_MARKER": str(KILL_MARKER)}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("tables")
    jsonl = folder / "a.jsonl"
    jsonl.write_text("".join(json.dumps({"text": f"apples and pears {i} grow in orchard {i % 4}",
                                         "label": f"fruit{i % 2}"}) + "\n" for i in range(23)),
                     encoding="utf-8")
    csv = folder / "b.csv"
    csv.write_text("text,label,title\n" + "".join(f'"a match, goal {i} in half {i % 3}",sport,'
                                                  f"match {i}\n" for i in range(19)),
                   encoding="utf-8")
    return [str(jsonl), str(csv)]


def same_documents(got: Index, want: Index) -> None:
    assert got.ids == want.ids and got.labels == want.labels
    assert got.metadata == want.metadata
    assert (got.stored_vectors() != want.stored_vectors()).nnz == 0


def test_files_on_ray_give_the_local_engines_index(tables, tmp_path):
    builder = build_files_ray(tables, tmp_path / "ray", encoder=make_encoder("count"),
                              shard_size=15, workers=2, batch_size=8)
    assert builder.count == 42 and is_sharded(tmp_path / "ray")
    documents = [d for path in tables for d in read_documents(path)]
    local = build_index(documents, encoder=make_encoder("count"), shard_size=15, batch_size=8)
    same_documents(Index.load(tmp_path / "ray"), local)
    assert all(":" in str(worker) for worker in builder.worker_peak_mib)  # host:pid of actors


@pytest.fixture
def small_ranges(monkeypatch):
    """Pieces of work of 8 pages, so that a small dump is several of them, most on the actors
    (the first ones are read here, until the encoder is fitted)."""
    import simtools.wiki.dump_source as dump_source

    monkeypatch.setattr(dump_source, "PAGES_PER_RANGE", 8)


def test_a_multistream_dump_on_ray_gives_the_local_engines_index(tmp_path, small_ranges):
    dump = synthetic(tmp_path, numbered(60), per_stream=4)
    options = dict(encoder="tfidf", fit_pages=10, batch_size=8, shard_size=25)
    build_dump_index(dump, tmp_path / "local", workers=1, **options)
    report = build_dump_index(dump, tmp_path / "ray", workers=2, engine="ray", **options)
    assert report.engine == "ray" and report.articles_indexed == 60
    assert report.worker_peak_memory_mib > 0  # the actors did the work
    same_index(tmp_path / "local", tmp_path / "ray")


def test_an_actor_killed_mid_build_is_restarted_and_the_index_is_the_same(tmp_path, monkeypatch,
                                                                          small_ranges):
    import simtools.wiki.dump_source as dump_source
    from tests.ray_faults import streams_dying_once

    dump = synthetic(tmp_path, numbered(40), per_stream=4)
    build_dump_index(dump, tmp_path / "local", encoder="hashing", batch_size=8, shard_size=15)
    marker = KILL_MARKER
    marker.write_text("")
    monkeypatch.setattr(dump_source, "streams_documents", streams_dying_once)
    report = build_dump_index(dump, tmp_path / "ray", encoder="hashing", batch_size=8,
                              shard_size=15, workers=2, engine="ray")
    assert not marker.exists()  # an actor did die
    assert report.articles_indexed == 40 and report.worker_peak_memory_mib > 0
    same_index(tmp_path / "local", tmp_path / "ray")


def test_the_command_line_builds_on_ray(tables, tmp_path):
    from simtools_cli.main import main

    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["index", "files", *tables, "--out", str(out),
                                       "--encoder", "tfidf", "--engine", "ray",
                                       "--workers", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(next(line for line in result.output.splitlines()
                              if line.startswith("{")))
    assert summary["documents"] == 42 and len(Index.load(out)) == 42
    hits = Index.load(out).search(["goal in the second half"], k=1)[0]
    assert hits[0].label == "sport"


def test_an_unreachable_ray_address_fails_in_one_line(tables, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "RAY_ADDRESS": f"127.0.0.1:{port}"}
    done = subprocess.run([sys.executable, "-m", "simtools", "index", "files", tables[0],
                           "--out", str(tmp_path / "never"), "--engine", "ray"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot reach the Ray cluster" in lines[0], done.stderr
    assert not (tmp_path / "never").exists()


# -- classify --engine ray -------------------------------------------------------------------
LINES = ["Shares fell after the bank cut its forecast", "", "The striker scored twice\r",
         "안녕하세요", "election results \u2028 tonight", "   ", "new phone chips are faster"]


def local_lines(path: Path, *extra: str) -> str:
    from simtools_cli.main import main

    result = CliRunner().invoke(main, ["classify", "-", *extra], input=path.read_bytes())
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def many_lines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lines") / "in.txt"
    text = "\n".join(f"{line} {i}" if i % 5 else line for i in range(300)
                     for line in LINES[i % len(LINES):i % len(LINES) + 1])
    path.write_bytes(text.encode("utf-8"))  # no newline after the last line
    return path


def test_a_file_classified_on_ray_has_the_lines_classify_prints(many_lines, tmp_path):
    from simtools.classify.ray_file import classify_file_ray, line_ranges

    assert len(line_ranges(many_lines, 500)) > 10
    report = classify_file_ray(many_lines, tmp_path / "out.tsv", workers=2, chunk_bytes=500)
    assert report.lines == 300 and report.empty and report.unknown
    assert (tmp_path / "out.tsv").read_text(encoding="utf-8") == local_lines(many_lines)
    as_json = classify_file_ray(many_lines, tmp_path / "out.jsonl", workers=2, chunk_bytes=700,
                                top_k=3, as_json=True, unknown_reason="no letter or digit in "
                                "the scripts the model was trained on")
    assert as_json.lines == 300
    assert (tmp_path / "out.jsonl").read_text(encoding="utf-8") == local_lines(
        many_lines, "--json", "--top-k", "3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.tsv"]  # no .part


def test_classify_on_ray_from_the_command_line_starts_its_own_ray(many_lines, tmp_path):
    out = tmp_path / "labels.tsv"
    command = [sys.executable, "-m", "simtools", "classify", "--engine", "ray", str(many_lines),
               "--out", str(out), "--workers", "1"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == local_lines(many_lines)
    assert "classified 300 lines" in done.stderr
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 2 and "exists" in again.stderr  # --out is never overwritten


# -- search through shard actors -------------------------------------------------------------
@pytest.mark.parametrize("encoder,metric", [("count", "cosine"), ("bm25", "inner_product")])
def test_shards_served_by_ray_actors_find_the_same_neighbours(tables, tmp_path, encoder,
                                                              metric):
    from simtools.data import Document

    documents = [d for path in tables for d in read_documents(path)]
    documents += [Document(f"{d.text} again", d.title, d.label) for d in documents[:10]]
    index = build_index(documents, encoder=make_encoder(encoder), metric=metric, shard_size=12)
    index.save(tmp_path / "idx")
    queries = ["goal in the second half", "pears in the orchard", "apples and a goal"]
    want = Index.load(tmp_path / "idx").search(queries, k=7)
    served = Index.load(tmp_path / "idx").serve_on_ray()
    assert served.n_shards == 5
    got = served.search(queries, k=7)
    assert [[(h.id, h.score) for h in row] for row in got] == [
        [(h.id, h.score) for h in row] for row in want]
    with pytest.raises(Exception, match="read-only"):
        served.add_texts(["apples and a goal"])
