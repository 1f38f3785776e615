"""simtools.index.exact_dense: the fused blocked scan against a full stable sort, ties included,
at every block size and batch path, and searches from several threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import simtools.index.exact_dense as ed
from simtools.index.exact import ExactDense
from simtools.index.topk import RunningTopK


def stable_reference(X: np.ndarray, Q: np.ndarray, k: int, bias: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Top k of the float64 scores by a stable sort: ties go to the smaller position."""
    S = Q.astype(np.float64) @ X.astype(np.float64).T
    if bias is not None:
        S = S + bias.astype(np.float64)
    order = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(S, order, axis=1), order


def integer_data(rng, n: int, nq: int, d: int = 6, spread: int = 2):
    """Small integer vectors: every product is exact in float32, and most scores tie."""
    X = rng.integers(-spread, spread + 1, size=(n, d)).astype(np.float32)
    Q = rng.integers(-spread, spread + 1, size=(nq, d)).astype(np.float32)
    return X, Q


# (SCORE_BLOCK_BYTES, GROUP, MERGE_AFTER, QUERY_BATCH, SMALL_BATCH)
LAYOUTS = {
    "defaults": (ed.SCORE_BLOCK_BYTES, ed.GROUP, ed.MERGE_AFTER, ed.QUERY_BATCH, ed.SMALL_BATCH),
    "tiny blocks, merge every block": (4 * 64 * 40, 4, 0, 64, 2),
    "tiny blocks, merge at the end": (4 * 64 * 40, 8, 10**9, 64, 2),
    "groups wider than a block": (4 * 64 * 40, 64, 2, 64, 2),
    "small-batch path for all": (4 * 64 * 40, 4, 2, 64, 10**6),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("nq", [1, 3, 70, 200])
@pytest.mark.parametrize("with_bias", [False, True])
def test_fused_scan_equals_a_stable_sort_ties_included(layout, nq, with_bias, rng, monkeypatch):
    for name, value in zip(("SCORE_BLOCK_BYTES", "GROUP", "MERGE_AFTER", "QUERY_BATCH",
                            "SMALL_BATCH"), LAYOUTS[layout], strict=True):
        monkeypatch.setattr(ed, name, value)
    X, Q = integer_data(rng, 1999, nq)  # 1999: a short last block and a short last group
    bias = -rng.integers(0, 3, size=len(X)).astype(np.float32) if with_bias else None
    for k in (1, 7, 40):
        want_scores, want_positions = stable_reference(X, Q, k, bias)
        scores, positions = ed.fused_topk(X, Q, k, bias=bias)
        np.testing.assert_array_equal(positions, want_positions)
        np.testing.assert_array_equal(scores, want_scores.astype(np.float32))


def test_fused_scan_with_k_equal_to_n_and_more_than_the_groups(rng, monkeypatch):
    monkeypatch.setattr(ed, "SCORE_BLOCK_BYTES", 4 * 50 * 32)
    X, Q = integer_data(rng, 90, 50)
    for k in (89, 90):
        np.testing.assert_array_equal(ed.fused_topk(X, Q, k)[1], stable_reference(X, Q, k)[1])


def test_fused_scan_on_random_floats_matches_float64(rng):
    X = rng.normal(size=(5000, 24)).astype(np.float32)
    Q = rng.normal(size=(300, 24)).astype(np.float32)
    scores, positions = ed.fused_topk(X, Q, 10)
    ref_scores, ref_positions = stable_reference(X, Q, 10)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)
    gaps = np.abs(np.diff(ref_scores, axis=1)).min(axis=1) > 1e-4  # rows without near-ties
    np.testing.assert_array_equal(positions[gaps], ref_positions[gaps])


def test_running_topk_keeps_the_smaller_column_among_ties():
    best = RunningTopK(2, 3)
    best.fold(np.array([0, 0, 1]), np.array([5.0, 5.0, 1.0], np.float32), np.array([0, 1, 0]))
    assert best.threshold[0] == -np.inf and best.threshold[1] == -np.inf
    best.fold(np.array([0, 0, 1, 1]), np.array([5.0, 6.0, 2.0, 1.0], np.float32),
              np.array([2, 3, 1, 2]))
    assert best.columns.tolist() == [[3, 0, 1], [1, 0, 2]]
    assert best.values.tolist() == [[6.0, 5.0, 5.0], [2.0, 1.0, 1.0]]
    assert best.threshold.tolist() == [5.0, 1.0]
    best.fold(np.array([], np.int64), np.array([], np.float32), np.array([], np.int64))
    assert best.columns.tolist() == [[3, 0, 1], [1, 0, 2]]


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_backend_matches_reference_after_adds_and_removes(metric, rng):
    X = rng.normal(size=(3000, 16)).astype(np.float32)
    backend = ExactDense(16, metric)
    backend.add(X[:1000])
    backend.add(X[1000:])
    backend.remove(np.arange(0, 3000, 3))
    kept = np.delete(X, np.arange(0, 3000, 3), axis=0)
    Q = rng.normal(size=(40, 16)).astype(np.float32)
    scores, positions = backend.search(Q, 5)
    if metric == "ip":
        want = stable_reference(kept, Q, 5)[1]
        np.testing.assert_allclose(scores, np.take_along_axis(Q @ kept.T, positions, 1), rtol=1e-5)
    else:
        D = ((Q[:, None, :].astype(np.float64) - kept[None].astype(np.float64)) ** 2).sum(-1)
        want = np.argsort(D, axis=1, kind="stable")[:, :5]
        np.testing.assert_allclose(scores, np.take_along_axis(D, positions, 1), rtol=1e-4)
    np.testing.assert_array_equal(positions, want)


def test_searches_from_several_threads_agree(rng):
    X = rng.normal(size=(3000, 16)).astype(np.float32)
    backend = ExactDense(16)
    backend.add(X)
    queries = [rng.normal(size=(n, 16)).astype(np.float32) for n in (1, 50, 300, 8)]
    expected = [backend.search(Q, 5) for Q in queries]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda Q: backend.search(Q, 5), queries * 3))
    for got, want in zip(results, expected * 3, strict=True):
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])
    backend.release_buffer()  # kept for Index.release_buffers: nothing is held between searches
