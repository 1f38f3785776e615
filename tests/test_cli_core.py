"""The core commands through click's CliRunner: compare, index files, search, classify --index."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from folder_tools import live, reseal
from simtools_cli.main import main

DOCS = {
    "sport": {"football.txt": "football is a team sport; players score a goal in the match",
              "tennis.txt": "tennis players hit the ball over the net with a racket"},
    "tech": {"chips.txt": "computer chips run software faster every year",
             "learning.txt": "machine learning software trains a neural network model on data"},
}


def run(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(main, list(args), input=input)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def fails(result, message: str):
    """A one-line error, a non-zero exit and no traceback."""
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and message in errors[0], result.output


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    for label, files in DOCS.items():
        (root / label).mkdir()
        for name, text in files.items():
            (root / label / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def index_dir(docs, tmp_path_factory):
    out = tmp_path_factory.mktemp("indexes") / "idx"
    ok(run("index", "files", str(docs), "--out", str(out), "--encoder", "count"))
    return out


# -- compare ----------------------------------------------------------------------------------
def test_compare_table(corpus, tweets):
    result = ok(run("compare", tweets["Association football"], *corpus.values()))
    lines = result.stdout.splitlines()
    assert lines[0].startswith("query: what a goal")
    assert "euclidean" in lines[1] and "cosine" in lines[1] and "norm.eucl." in lines[1]
    assert "nearest: euclidean -> #3, cosine -> #2, normalized_euclidean -> #2" in result.stdout
    assert lines[2 + 3].split()[2].endswith("*")  # Tennis: Euclidean's pick


def test_compare_json_schema(corpus, tweets):
    result = ok(run("compare", "--json", tweets["Association football"], *corpus.values()))
    out = json.loads(result.stdout)
    assert list(out) == ["query", "candidates", "nearest"]
    assert out["query"] == tweets["Association football"]
    assert [c["text"] for c in out["candidates"]] == list(corpus.values())
    for candidate in out["candidates"]:
        assert list(candidate) == ["text", "euclidean", "cosine", "normalized_euclidean"]
        assert all(isinstance(candidate[k], float) for k in list(candidate)[1:])
    assert out["nearest"] == {"euclidean": 3, "cosine": 2, "normalized_euclidean": 2}


def test_compare_with_an_index(index_dir):
    out = json.loads(ok(run("compare", "--index", str(index_dir), "a goal in football", "--json")).stdout)
    assert [c["title"] for c in out["candidates"]] == ["football.txt", "tennis.txt", "chips.txt",
                                                      "learning.txt"]
    assert out["nearest"]["cosine"] == 0


def test_compare_usage_errors(index_dir):
    result = run("compare", "query")
    assert result.exit_code == 2 and "give at least one CANDIDATE" in result.output
    result = run("compare", "--index", str(index_dir), "query", "candidate")
    assert result.exit_code == 2 and "not both" in result.output


def test_compare_empty_text():
    fails(run("compare", "", "football"), "query[0] is empty")


def test_compare_unknown_encoder():
    fails(run("compare", "a", "b", "--encoder", "bert"), "unknown encoder 'bert'")


# -- index files ------------------------------------------------------------------------------
def test_index_files_class_folders(docs, tmp_path):
    result = ok(run("index", "files", str(docs), "--out", str(tmp_path / "idx"), "--json"))
    summary = json.loads(result.stdout)
    assert summary["documents"] == 4 and summary["encoder"] == "bm25"
    assert summary["metric"] == "inner_product" and summary["out"] == str(tmp_path / "idx")
    assert "indexing" in result.stderr  # progress goes to stderr only


def test_index_files_summary_goes_to_stderr(docs, tmp_path):
    result = ok(run("index", "files", str(docs / "tech"), "--out", str(tmp_path / "idx"),
                    "--metric", "euclidean", "--encoder", "char"))
    assert result.stdout == ""
    assert "indexed 2 documents into" in result.stderr and "char, euclidean" in result.stderr


def test_index_text_files_and_tables(docs, tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("text,label,title\ngoal in the match,sport,Match\nnew chips,tech,Chips\n")
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text(json.dumps({"text": "a late goal wins the cup", "label": "sport"}) + "\n")
    out = tmp_path / "idx"
    ok(run("index", "files", str(docs / "sport" / "tennis.txt"), str(csv), str(jsonl), "--out",
           str(out), "--encoder", "count"))
    result = ok(run("search", "goal", "--index", str(out), "--json"))
    found = json.loads(result.stdout)["neighbours"]
    # only the documents that contain "goal": the others share nothing with the query
    assert {n["title"] for n in found} == {"Match", "rows.jsonl:1"}
    assert found[0]["label"] == "sport"


def test_index_files_non_utf8(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 au lait")
    # Without --encoding a file that is not UTF-8 is read as cp1252 (tests/test_cli_main.py).
    fails(run("index", "files", str(tmp_path / "bad.txt"), "--out", str(tmp_path / "idx"),
              "--encoding", "utf-8"), "bad.txt is not utf-8 text")
    assert not (tmp_path / "idx").exists()


def test_index_files_unknown_metric(docs, tmp_path):
    result = run("index", "files", str(docs), "--out", str(tmp_path / "idx"), "--metric", "manhattan")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'manhattan' is not one of 'cosine', 'euclidean'" in result.output


def test_index_files_missing_path(tmp_path):
    result = run("index", "files", str(tmp_path / "nope"), "--out", str(tmp_path / "idx"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_index_files_sparse_encoder_with_faiss_backend(docs, tmp_path):
    fails(run("index", "files", str(docs), "--out", str(tmp_path / "idx"), "--backend", "hnsw"),
          "--backend hnsw needs a dense encoder")


# -- search -----------------------------------------------------------------------------------
def test_search_json_schema(index_dir):
    result = ok(run("search", "football goal players", "--index", str(index_dir), "--json",
                    "-k", "2"))
    out = json.loads(result.stdout)
    assert list(out) == ["query", "metric", "neighbours"]
    assert out["query"] == "football goal players"
    assert out["metric"] == "cosine"
    assert len(out["neighbours"]) == 2
    for n in out["neighbours"]:
        assert list(n) == ["id", "title", "label", "score"] and isinstance(n["score"], float)
    assert out["neighbours"][0] == {"id": "0", "title": "football.txt", "label": "sport",
                                    "score": pytest.approx(out["neighbours"][0]["score"])}
    assert out["neighbours"][0]["score"] >= out["neighbours"][1]["score"]


def test_search_table_defaults_to_the_index_size(index_dir):
    result = ok(run("search", "software players", "--index", str(index_dir)))
    lines = result.stdout.splitlines()  # all four documents share a word with the query
    assert lines[0] == "query: software players" and len(lines) == 5
    assert "[tech]" in lines[1]


def test_search_reads_stdin(index_dir):
    result = ok(run("search", "-", "--index", str(index_dir), "--json", "-k", "1",
                    input="football goal\n\nneural network software\n"))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["query"] for r in rows] == ["football goal", "", "neural network software"]
    assert rows[1] == {"query": "", "metric": "cosine", "neighbours": [],
                       "error": "EMPTY: nothing visible (blank, "
                       "whitespace or control characters)"}
    assert [rows[i]["neighbours"][0]["title"] for i in (0, 2)] == ["football.txt", "learning.txt"]


def test_search_stdin_not_utf8(index_dir):
    result = run("search", "-", "--index", str(index_dir), input=b"caf\xe9\n")
    assert result.exit_code == 2 and "stdin is not UTF-8" in result.output
    assert "Traceback" not in result.output


def test_search_empty_text(index_dir):
    result = ok(run("search", "", "--index", str(index_dir)))
    assert result.stdout.splitlines()[1].startswith("   -  EMPTY: nothing visible")
    assert "1 EMPTY" in result.stderr


def test_search_text_with_no_known_token(index_dir):
    result = ok(run("search", "zzz", "--index", str(index_dir)))
    assert result.stdout == "query: zzz\n   -  UNKNOWN: no token this index's encoder knows\n"
    assert "1 UNKNOWN" in result.stderr and "--encoder char" in result.stderr


def test_search_missing_index(tmp_path):
    fails(run("search", "goal", "--index", str(tmp_path / "nope")), "does not exist")


def test_search_corrupted_index(index_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(index_dir, broken)
    (broken / "config.json").write_text("{oops")
    fails(run("search", "goal", "--index", str(broken)), "config.json is corrupted")


def test_search_truncated_index(index_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(index_dir, broken)
    data = (live(broken) / "vectors.safetensors").read_bytes()
    (live(broken) / "vectors.safetensors").write_bytes(data[: len(data) // 2])
    fails(run("search", "goal", "--index", str(broken)), "does not match the checksum")
    reseal(broken)  # a truncated file that the manifest agrees with is still caught
    fails(run("search", "goal", "--index", str(broken)), "is corrupted or truncated")


def test_search_k_too_large(index_dir):
    fails(run("search", "goal", "--index", str(index_dir), "-k", "5"),
          "k=5 is larger than the 4 items in the index")


def test_search_dimension_mismatch(index_dir, docs, tmp_path):
    other = tmp_path / "other"
    ok(run("index", "files", str(docs / "tech"), "--out", str(other), "--encoder", "count"))
    broken = tmp_path / "broken"
    shutil.copytree(index_dir, broken)
    shutil.rmtree(live(broken) / "encoder")
    # an encoder with another vocabulary
    shutil.copytree(live(other) / "encoder", live(broken) / "encoder")
    reseal(broken)
    # Caught when the folder is loaded, before any query is encoded.
    fails(run("search", "software", "--index", str(broken)), "-d vectors but the index holds")


# -- classify --index -------------------------------------------------------------------------
def test_classify_with_an_index_json_schema(index_dir):
    result = ok(run("classify", "--index", str(index_dir), "-k", "1", "--json",
                    "a goal in the football match", "neural network software"))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    for row in rows:
        assert list(row) == ["text", "label", "probabilities"]
        assert set(row["probabilities"]) == {"sport", "tech"}
        assert sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert [r["label"] for r in rows] == ["sport", "tech"]
    assert rows[0]["text"] == "a goal in the football match"


def test_classify_with_an_index_table(index_dir):
    result = ok(run("classify", "--index", str(index_dir), "--mode", "nearest", "--top-k", "2",
                    "--metric", "euclidean", "neural network software"))
    label, p, other, q, text = result.stdout.rstrip("\n").split("\t")
    assert (label, other, text) == ("tech", "sport", "neural network software")
    assert float(p) >= float(q)


def test_classify_with_an_index_reads_stdin(index_dir):
    result = ok(run("classify", "-", "--index", str(index_dir), "-k", "1", input="football goal\n"))
    assert result.stdout.startswith("sport\t1.000\tfootball goal")


def test_classify_errors(index_dir, tmp_path):
    fails(run("classify", "goal", "--index", str(tmp_path / "nope")), "does not exist")
    result = run("classify", "goal", "--index", str(index_dir), "--model", str(index_dir))
    assert result.exit_code == 2 and "either --model or --index" in result.output
    result = run("classify", "goal", "--index", str(index_dir), "--top-k", "0")
    assert result.exit_code == 2 and "must be at least 1" in result.output


# -- help -------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["compare"], ["index"], ["index", "files"], ["search"],
                                     ["classify"]])
def test_help(command):
    result = ok(run(*command, "--help"))
    assert result.stdout.startswith("Usage: ")
    assert "Examples:" in result.stdout


def test_python_dash_m_simtools_help():
    result = subprocess.run([sys.executable, "-m", "simtools", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("classify", "compare", "index", "search"):
        assert command in result.stdout


def test_a_command_that_cannot_be_imported_keeps_help_working():
    import click
    from simtools_cli.common import LazyGroup

    @click.group(cls=LazyGroup, lazy={"ghost": "simtools_cli.no_such_module:command"})
    def group() -> None:
        """A group."""

    help_result = CliRunner().invoke(group, ["--help"])
    assert help_result.exit_code == 0 and "ghost" in help_result.stdout
    assert "Unavailable: No module named 'simtools_cli.no_such_module'" in help_result.stdout
    fails(CliRunner().invoke(group, ["ghost", "--any", "thing"]),
          "'ghost' is unavailable: No module named 'simtools_cli.no_such_module'")


def test_stdin_is_one_text_per_line_whatever_the_unicode(index_dir):
    queries = ["football goal\u2028match", "neural\x0csoftware", "tennis"]
    result = ok(run("search", "-", "--index", str(index_dir), "--json", "-k", "1",
                    input="\r\n".join(queries).encode() + b"\r\n"))
    rows = result.stdout.rstrip("\n").split("\n")  # JSON may hold U+2028 unescaped
    assert [json.loads(line)["query"] for line in rows] == queries


# -- which errors become one line -------------------------------------------------------------
def _command_raising(error: BaseException):
    import click
    from simtools_cli.common import friendly_errors

    @click.command()
    @friendly_errors
    def command() -> None:
        raise error

    return command


@pytest.mark.parametrize("error, message", [
    ("InputError", "bad input; fix it"), ("FormatError", "damaged folder"),
    ("UnknownIdError", "unknown id(s) ['x']"), ("OSError", "disk full")])
def test_our_errors_become_one_line(error, message):
    import simtools.errors as errors

    kind = getattr(errors, error, None) or OSError
    fails(CliRunner().invoke(_command_raising(kind(message)), []), message)


@pytest.mark.parametrize("error", [TypeError("a bug"), KeyError("a bug"), AttributeError("bug"),
                                   IndexError("a bug")])
def test_bugs_keep_their_traceback(error):
    result = CliRunner().invoke(_command_raising(error), [])
    assert result.exit_code == 1 and result.exception is error


def test_compare_with_an_index_whose_title_is_an_object(index_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(index_dir, broken)
    docs = next(broken.rglob("documents.jsonl"))
    rows = [json.loads(line) for line in docs.read_text().splitlines()]
    rows[0]["title"] = {"en": "Football"}
    docs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run("compare", "--index", str(broken), "a goal in football")
    assert "Traceback" not in result.output and not isinstance(result.exception, AttributeError)
    assert result.exit_code == 0 or isinstance(result.exception, SystemExit)


def test_a_model_with_nan_weights_is_a_one_line_error(tmp_path):
    from simtools.student import StudentClassifier

    model = StudentClassifier.load()
    model.head_bias = model.head_bias.copy()
    model.head_bias[1] = float("nan")
    model.save(tmp_path / "m")
    fails(run("classify", "--model", str(tmp_path / "m"), "shares fell"),
          "head_bias holds 1 NaN or infinite value(s)")


def test_library_advice_is_said_in_flags_on_the_command_line():
    from simtools_cli.common import in_flags

    assert in_flags("use encoder='char' or rebuild without resume=True; check api_url") == \
        "use --encoder char or rebuild without --resume; check --api-url"
    assert in_flags("k=5 is larger than the index") == "k=5 is larger than the index"


def test_no_library_message_names_a_command_line_flag():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "simtools"
    offenders = []
    for path in root.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if (re.search(r"[\"'][^\"']*\s--[a-z][a-z-]+", code) and "pip install" not in code
                    and '"""' not in code and "``" not in code):
                offenders.append(f"{path.relative_to(root)}:{number}")
    assert offenders == [], "say it in arguments; the CLI turns them into flags"
