"""benchmarks/bench_ann_libraries.py on toy vectors: the protocol's pieces and its report."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import bench_ann_libraries as bench

pytest.importorskip("faiss")


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q = X[:20] + 0.01 * rng.standard_normal((20, 16)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "Q.npy", Q)
    np.save(tmp_path / "truth.npy", bench.exact_top_k(X, Q))
    return tmp_path


def test_the_reference_is_the_exact_top_k(data):
    X, Q = np.load(data / "X.npy"), np.load(data / "Q.npy")
    truth = np.load(data / "truth.npy")
    scores = Q @ X.T
    for row, found in zip(scores, truth):
        assert set(found.tolist()) == set(np.argsort(-row)[:bench.K].tolist())


def test_exact_and_hnsw_workers_score_recall(data):
    exact = bench.worker("exact", data, repeat=1)
    assert exact["rows"][0]["recall"] == 1.0
    assert exact["rows"][0]["qps"] > 0 and exact["rows"][0]["qps_batch"] > 0
    hnsw = bench.worker("simtools-hnsw", data, repeat=1)
    assert hnsw["settings"]["m"] == 32
    recalls = [row["recall"] for row in hnsw["rows"]]
    assert all(0 <= r <= 1 for r in recalls) and recalls[-1] >= 0.9
    # the sweep stops once recall is (nearly) perfect: higher beams only cost time
    assert len(recalls) == len(bench.BEAMS) or recalls[-1] >= 0.999


def test_a_failing_competitor_is_skipped_not_fatal(data, capsys):
    # (a library that is not installed fails the same way, in its own process)
    assert bench.run_competitor("nothing", data, repeat=1) is None
    assert "nothing: skipped (unknown competitor 'nothing'; known: exact," in \
        capsys.readouterr().out


def _result(name, rows, build_s=1.0):
    return {"competitor": name, "settings": {}, "build_s": build_s,
            "rows": [{"competitor": name, "knob": knob, "value": value, "recall": recall,
                      "qps": qps, "qps_batch": 2 * qps} for knob, value, recall, qps in rows]}


def test_summary_reads_the_fastest_setting_at_the_target():
    results = [_result("exact", [("", 0, 1.0, 100.0)]),
               _result("simtools-hnsw", [("ef", 16, 0.90, 3000.0), ("ef", 32, 0.96, 2000.0),
                                         ("ef", 64, 0.99, 1500.0)]),
               _result("hnswlib-M16", [("ef", 16, 0.97, 4000.0)]),
               _result("usearch-c16", [("ef", 16, 0.5, 9000.0)])]
    summary = bench.summarise(results)
    assert summary["best_at_recall"]["simtools-hnsw"]["value"] == 32
    assert "usearch-c16" not in summary["best_at_recall"]
    assert summary["ours_vs_exact"] == pytest.approx(20.0)
    assert summary["ours_vs_best_library"] == pytest.approx(0.5)
    assert summary["best_library"] == "hnswlib-M16"
    table = bench.readme_table({"results": results, "summary": summary})
    assert summary["ours_vs_exact_batch"] == pytest.approx(20.0)
    assert "| simtools-hnsw | ef 32 | 0.96 | 2,000 | 20.0 | 4,000 | 1 |" in table
    assert "| usearch-c16 |  | below the target |" in table
    assert "- ours / exact at recall >= 0.95: 20.00x a query a call, 20.00x all in one call" \
        in table
    assert table.endswith("- ours / the best library (hnswlib-M16): 0.50x")


def test_results_file_names_hold_no_colon_or_slash():
    assert bench.file_slug("minilm") == "minilm"
    assert bench.file_slug("student:simtools/models/bbc-news") == "student-bbc-news"
    assert bench.file_slug("student:/data/models/mine/") == "student-mine"
