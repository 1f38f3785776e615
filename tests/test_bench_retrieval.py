"""``benchmarks/bench_retrieval.py --quick``: a smoke run in a subprocess on a slice of the data."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

from conftest import ROOT, shared_file

SCRIPT = ROOT / "benchmarks" / "bench_retrieval.py"


def test_quick_run_prints_the_table_and_the_choice():
    shared_file("wikipedia/enwiki-sample-pages-articles.xml.bz2")
    shared_file("lee/lee.cor")
    candidates = ["bm25", "tfidf"]
    if importlib.util.find_spec("bm25s") is not None:
        candidates.append("bm25s")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeat", "1", "--no-json", "--no-plot",
         "--candidates", ",".join(candidates)],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "search quality (test half)" in out and "wiki heldout MRR@10" in out
    assert "chosen lexical default (validation half):" in out
    assert "BM25 fitted on the first quarter vs a full fit" in out
    for name in candidates:
        assert f"| {name} |" in out  # the README's markdown table
    if "bm25s" in candidates:
        assert "simtools BM25 vs bm25s" in out
