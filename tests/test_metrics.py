"""simtools.metrics: every pair function and pairwise metric, dense and sparse, against references."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial import distance
from sklearn.metrics import pairwise as skp

from simtools import metrics
from simtools.metrics import PAIRWISE_METRICS, Metric, pairwise

PAIR_FUNCTIONS = {
    "euclidean": metrics.euclidean,
    "cosine_similarity": metrics.cosine_similarity,
    "cosine_distance": metrics.cosine_distance,
    "normalized_euclidean": metrics.normalized_euclidean,
    "normalized_euclidean_similarity": metrics.normalized_euclidean_similarity,
}

HYPOTHESIS = settings(max_examples=50, deadline=None)


def reference(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    """Plain numpy definitions from the module docstring (a and b non-zero)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(a @ b / (na * nb))
    unit = float(np.linalg.norm(a / na - b / nb))
    return {"euclidean": float(np.linalg.norm(a - b)), "cosine_similarity": cos,
            "cosine_distance": 1 - cos, "normalized_euclidean": unit,
            "normalized_euclidean_similarity": 1 - unit, "inner_product": float(a @ b)}[metric]


def as_kind(X: np.ndarray, kind: str):
    return sp.csr_matrix(X) if kind == "sparse" else X


# Moderate magnitudes and no values so small that their squares underflow to zero.
element = st.one_of(st.just(0.0), st.floats(1e-3, 1e3), st.floats(-1e3, -1e-3))


@st.composite
def vector_pairs(draw, min_rows: int = 1, max_rows: int = 1):
    dim = draw(st.integers(1, 8))
    n_a = draw(st.integers(min_rows, max_rows))
    n_b = draw(st.integers(min_rows, max_rows))
    a = draw(arrays(np.float64, (n_a, dim), elements=element))
    b = draw(arrays(np.float64, (n_b, dim), elements=element))
    return a, b


# -- fixed examples ---------------------------------------------------------------------------
A = np.array([3.0, 4.0, 0.0, 1.0])
B = np.array([1.0, 0.0, 2.0, 5.0])


@pytest.mark.parametrize("kind_a", ["dense", "sparse"])
@pytest.mark.parametrize("kind_b", ["dense", "sparse"])
@pytest.mark.parametrize("metric", list(PAIR_FUNCTIONS))
def test_pair_functions_match_definition(metric, kind_a, kind_b):
    a = as_kind(A[None, :], kind_a) if kind_a == "sparse" else A
    b = as_kind(B[None, :], kind_b) if kind_b == "sparse" else B
    assert PAIR_FUNCTIONS[metric](a, b) == pytest.approx(reference(A, B, metric), abs=1e-12)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("metric", PAIRWISE_METRICS)
def test_pairwise_matches_definition_for_every_pair(metric, kind, rng):
    X = rng.normal(size=(7, 5))
    Y = rng.normal(size=(4, 5))
    got = pairwise(as_kind(X, kind), as_kind(Y, kind), metric=metric, batch_size=3)
    expected = np.array([[reference(x, y, metric) for y in Y] for x in X])
    assert got.shape == (7, 4)
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("metric", PAIRWISE_METRICS)
def test_pairwise_dense_and_sparse_agree_and_y_defaults_to_x(metric, rng):
    X = rng.normal(size=(6, 9)) * (rng.random((6, 9)) < 0.4)
    dense = pairwise(X, metric=metric)
    np.testing.assert_allclose(pairwise(sp.csr_matrix(X), metric=metric), dense, atol=1e-12)
    np.testing.assert_allclose(pairwise(sp.csr_matrix(X), X, metric=metric), dense, atol=1e-12)


def test_pairwise_keeps_float32_but_euclidean_is_accurate():
    a = np.array([[1000.0, 1000.0]], np.float32)
    b = np.array([[1000.0, 1001.0]], np.float32)
    got = pairwise(a, b, metric="euclidean")
    assert got.dtype == np.float32
    assert got[0, 0] == pytest.approx(1.0, abs=1e-4)
    assert metrics.euclidean(a, b) == pytest.approx(1.0, abs=1e-9)
    assert pairwise(a, a, metric="normalized_euclidean")[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_pairwise_unknown_metric_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown metric 'manhattan'; valid values are euclidean, "):
        pairwise(A, B, metric="manhattan")


def test_pairwise_dimension_mismatch():
    with pytest.raises(ValueError, match="X has dimension 4 but Y has 3"):
        pairwise(A, B[:3])


def test_three_dimensional_input_is_rejected():
    with pytest.raises(ValueError, match=r"expected a vector or a matrix of shape \(n, dim\)"):
        pairwise(np.zeros((2, 2, 2)))


def test_pair_function_rejects_matrices():
    with pytest.raises(ValueError, match="expected two single vectors.*use pairwise"):
        metrics.cosine_similarity(np.ones((2, 3)), np.ones(3))


def test_integer_input_is_accepted():
    assert metrics.euclidean(np.array([0, 0]), np.array([3, 4])) == 5.0
    assert pairwise(np.array([[3, 4]]), metric="inner_product")[0, 0] == 25.0


def test_row_norms_and_l2_normalize_dense_and_sparse():
    X = np.array([[3.0, 4.0], [0.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(metrics.row_norms(X), [5, 0, 2])
    np.testing.assert_allclose(metrics.row_norms(sp.csr_matrix(X)), [5, 0, 2])
    unit = metrics.l2_normalize(X)
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0, 0], [0, 1]])
    unit_sparse = metrics.l2_normalize(sp.csr_matrix(X))
    assert sp.issparse(unit_sparse) and unit_sparse.format == "csr"
    np.testing.assert_allclose(unit_sparse.toarray(), unit)
    assert metrics.l2_normalize(X.astype(np.float32)).dtype == np.float32


def test_metric_enum():
    assert Metric("cosine").higher_is_better and not Metric.EUCLIDEAN.higher_is_better
    assert Metric.COSINE.normalizes and Metric.NORMALIZED_EUCLIDEAN.normalizes
    assert not Metric.EUCLIDEAN.normalizes and not Metric.INNER_PRODUCT.normalizes


# -- zero vectors: documented behaviour, never NaN ----------------------------------------------
@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_zero_vectors_have_documented_values(kind):
    zero = as_kind(np.zeros((1, 3)), kind)
    other = as_kind(np.array([[1.0, 2.0, 3.0]]), kind)
    for a, b in [(zero, other), (other, zero), (zero, zero)]:
        assert metrics.cosine_similarity(a, b) == 0.0
        assert metrics.cosine_distance(a, b) == 1.0
        assert metrics.normalized_euclidean(a, b) == pytest.approx(math.sqrt(2))
        assert metrics.normalized_euclidean_similarity(a, b) == pytest.approx(1 - math.sqrt(2))
    assert metrics.euclidean(zero, other) == pytest.approx(math.sqrt(14))
    assert metrics.euclidean(zero, zero) == 0.0
    for metric in PAIRWISE_METRICS:
        assert np.isfinite(pairwise(zero, zero, metric=metric)).all()


# -- sparse is never densified ----------------------------------------------------------------
def test_sparse_million_dimension_vectors_are_not_densified():
    X = sp.random(4, 10**6, density=2e-5, format="csr", random_state=0)
    Y = sp.random(5, 10**6, density=2e-5, format="csr", random_state=1)
    expected = (X @ Y.T).toarray()
    dense_bytes = X.shape[0] * X.shape[1] * 8  # 32 MB if X were densified
    for metric in PAIRWISE_METRICS:
        tracemalloc.start()
        try:
            got = pairwise(X, Y, metric=metric)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < dense_bytes / 2, (metric, peak)
        if metric == "inner_product":
            np.testing.assert_allclose(got, expected)
    a = X[0]
    assert metrics.euclidean(a, a) == 0.0
    assert metrics.cosine_similarity(a, a) == pytest.approx(1.0)


# -- the worked example of design.md ----------------------------------------------------------
def test_worked_example_euclidean_picks_x4_cosine_picks_x1():
    x14 = np.array([1.3, 1.3])
    candidates = {"x0": [6.6, 6.2], "x1": [9.7, 9.9], "x4": [1.3, 2.7]}
    names = list(candidates)
    X = np.array(list(candidates.values()))
    assert names[int(np.argmin(pairwise(x14, X, metric="euclidean")[0]))] == "x4"
    assert names[int(np.argmax(pairwise(x14, X, metric="cosine_similarity")[0]))] == "x1"
    assert names[int(np.argmin(pairwise(x14, X, metric="normalized_euclidean")[0]))] == "x1"
    assert min(names, key=lambda n: metrics.euclidean(x14, candidates[n])) == "x4"
    assert max(names, key=lambda n: metrics.cosine_similarity(x14, candidates[n])) == "x1"


# -- properties -------------------------------------------------------------------------------
@HYPOTHESIS
@given(vector_pairs())
def test_symmetry(pair):
    a, b = pair
    for name, func in PAIR_FUNCTIONS.items():
        assert func(a, b) == pytest.approx(func(b, a), abs=1e-9), name


@HYPOTHESIS
@given(vector_pairs(1, 5))
def test_value_ranges_and_no_nan(pair):
    a, b = pair
    ranges = {"euclidean": (0, np.inf), "cosine_similarity": (-1, 1), "cosine_distance": (0, 2),
              "normalized_euclidean": (0, 2), "normalized_euclidean_similarity": (-1, 1)}
    for metric, (low, high) in ranges.items():
        for kind in ("dense", "sparse"):
            values = pairwise(as_kind(a, kind), as_kind(b, kind), metric=metric)
            assert np.isfinite(values).all()
            assert (values >= low).all() and (values <= high).all(), metric


@HYPOTHESIS
@given(vector_pairs(), st.floats(1e-2, 1e2))
def test_cosine_is_scale_invariant_for_positive_scalars(pair, scale):
    a, b = pair
    assume(np.linalg.norm(a) > 0 and np.linalg.norm(b) > 0)
    cos = metrics.cosine_similarity(a, b)
    assert metrics.cosine_similarity(a * scale, b) == pytest.approx(cos, abs=1e-9)
    assert metrics.cosine_similarity(a, b * scale) == pytest.approx(cos, abs=1e-9)


@HYPOTHESIS
@given(vector_pairs())
def test_normalized_euclidean_is_a_function_of_cosine(pair):
    a, b = pair
    cos = metrics.cosine_similarity(a, b)
    expected = math.sqrt(max(2 - 2 * cos, 0))
    assert metrics.normalized_euclidean(a, b) == pytest.approx(expected, abs=1e-9)


@HYPOTHESIS
@given(vector_pairs(1, 8))
def test_normalized_euclidean_ranks_exactly_as_cosine(pair):
    q, X = pair
    cos = pairwise(q[:1], X, metric="cosine_similarity")[0]
    similarity = pairwise(q[:1], X, metric="normalized_euclidean_similarity")[0]
    dist = pairwise(q[:1], X, metric="normalized_euclidean")[0]
    for i in range(len(X)):
        for j in range(len(X)):
            if cos[i] > cos[j] + 1e-9:  # clearly nearer under cosine: nearer here too
                assert similarity[i] > similarity[j]
                assert dist[i] < dist[j]


@HYPOTHESIS
@given(vector_pairs())
def test_pair_functions_agree_with_scipy(pair):
    a, b = pair[0][0], pair[1][0]
    scale = 1 + np.linalg.norm(a) + np.linalg.norm(b)
    for kind in ("dense", "sparse"):
        x, y = (as_kind(a[None, :], kind), as_kind(b[None, :], kind)) if kind == "sparse" else (a, b)
        assert metrics.euclidean(x, y) == pytest.approx(distance.euclidean(a, b), abs=1e-9 * scale)
        if np.linalg.norm(a) > 0 and np.linalg.norm(b) > 0:
            assert metrics.cosine_distance(x, y) == pytest.approx(distance.cosine(a, b), abs=1e-9)


@HYPOTHESIS
@given(vector_pairs(1, 6))
def test_pairwise_agrees_with_sklearn(pair):
    X, Y = pair  # zero rows included: sklearn also calls their cosine similarity 0
    scale = 1 + np.abs(X).sum() + np.abs(Y).sum()
    for kind in ("dense", "sparse"):
        x, y = as_kind(X, kind), as_kind(Y, kind)
        np.testing.assert_allclose(pairwise(x, y, metric="euclidean"),
                                   skp.euclidean_distances(X, Y), atol=1e-6 * scale)
        np.testing.assert_allclose(pairwise(x, y, metric="cosine_similarity"),
                                   skp.cosine_similarity(X, Y), atol=1e-9)


# -- hostile numbers: NaN and infinity refused, huge and tiny vectors exact -----------------------
@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_an_input_error(bad, kind):
    from simtools.errors import InputError

    a = as_kind(np.array([[bad, 1.0, 2.0]]), kind)
    b = as_kind(np.array([[1.0, 1.0, 1.0]]), kind)
    for function in PAIR_FUNCTIONS.values():
        for x, y in [(a, b), (b, a)]:
            with pytest.raises(InputError, match="NaN or infinity"):
                function(x, y)
    for metric in PAIRWISE_METRICS:
        with pytest.raises(InputError, match="NaN or infinity"):
            pairwise(b, a, metric=metric)
    with pytest.raises(InputError, match="NaN or infinity"):
        metrics.row_norms(a)
    with pytest.raises(InputError, match="NaN or infinity"):
        metrics.l2_normalize(a)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("value, dtype", [(3e38, np.float32), (1e-30, np.float32),
                                          (1e-41, np.float32), (1e200, np.float64),
                                          (1e-300, np.float64), (1.5e308, np.float64)])
def test_huge_and_tiny_vectors_keep_their_length_and_direction(value, dtype, kind):
    X = as_kind(np.array([[value, value], [value, 0.0], [3.0, 4.0]], dtype=dtype), kind)
    norms = metrics.row_norms(X)
    expected = [value * math.sqrt(2), value, 5.0]
    np.testing.assert_allclose(norms, expected, rtol=1e-5 if value > 1e-40 else 1e-3)
    unit = metrics.l2_normalize(X)
    unit = unit.toarray() if sp.issparse(unit) else unit
    assert unit.dtype == dtype
    np.testing.assert_allclose(unit, [[0.5 ** 0.5, 0.5 ** 0.5], [1, 0], [0.6, 0.8]], rtol=1e-6)
    cos = pairwise(X, metric="cosine_similarity")
    np.testing.assert_allclose(np.diag(cos), 1.0, rtol=1e-6)
    row = np.array([value, value], dtype=dtype)
    assert metrics.cosine_similarity(row, row) == pytest.approx(1.0, rel=1e-6)
    assert metrics.normalized_euclidean(row, row) == pytest.approx(0.0, abs=1e-3)


def test_row_norms_fast_path_matches_float64_reference(rng):
    X = rng.normal(size=(500, 33)).astype(np.float32) * rng.uniform(1e-3, 1e3, size=(500, 1))
    X[7] = 0
    expected = np.linalg.norm(X.astype(np.float64), axis=1)
    np.testing.assert_allclose(metrics.row_norms(X), expected, rtol=1e-6)
    np.testing.assert_allclose(metrics.row_norms(sp.csr_matrix(X)), expected, rtol=1e-6)
    assert metrics.row_norms(X)[7] == 0 and not metrics.l2_normalize(X)[7].any()


@pytest.mark.parametrize("batch_size", [-1, 0, 1.5, True, "10"])
def test_pairwise_rejects_a_bad_batch_size(batch_size):
    from simtools.errors import InputError

    with pytest.raises(InputError, match=f"batch_size must be a positive integer.*got {batch_size!r}"):
        pairwise(np.ones((3, 2)), batch_size=batch_size)


def test_l2_normalize_checks_given_norms():
    from simtools.errors import InputError

    with pytest.raises(InputError, match=r"norms must be 2 numbers, one per row of X"):
        metrics.l2_normalize(np.ones((2, 3)), np.ones(3))
