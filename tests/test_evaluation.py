"""Ranking scores against hand-worked values and against scipy / scikit-learn references."""

from __future__ import annotations

import numpy as np
import pytest

from simtools.errors import InputError
from simtools.evaluation import (
    label_precision_at_k,
    mrr_at_k,
    ndcg_at_k,
    pearson,
    precision_at_k,
    recall_at_k,
)
from simtools.index import Neighbour

RANKED = [["a", "b", "c"], ["x", "y", "z"], ["p", "q"]]


def test_mrr_known_item() -> None:
    # ranks 2, none, 1 -> (1/2 + 0 + 1) / 3
    assert mrr_at_k(RANKED, ["b", "nope", "p"], k=10) == pytest.approx(0.5)
    # at k=1 only the third query counts
    assert mrr_at_k(RANKED, ["b", "nope", "p"], k=1) == pytest.approx(1 / 3)
    # the first relevant hit counts, not the best-placed of a set
    assert mrr_at_k([["a", "b", "c"]], [{"c", "b"}], k=3) == pytest.approx(0.5)


def test_recall_single_and_sets() -> None:
    assert recall_at_k(RANKED, ["b", "nope", "p"], k=1) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, ["b", "nope", "p"], k=3) == pytest.approx(2 / 3)
    assert recall_at_k([["a", "b", "c"]], [{"a", "c", "d", "e"}], k=3) == pytest.approx(0.5)


def test_precision_counts_missing_places_as_misses() -> None:
    # the third query returned 2 hits: its precision@3 is 1/3, not 1/2
    assert precision_at_k(RANKED, [{"a", "b"}, {"z"}, {"p"}], k=3) == pytest.approx(
        (2 / 3 + 1 / 3 + 1 / 3) / 3)


def test_label_precision() -> None:
    labels = [["sport", "tech", "sport"], ["tech"]]
    assert label_precision_at_k(labels, ["sport", "tech"], k=2) == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_neighbour_objects_are_read_by_id() -> None:
    hits = [[Neighbour("7", 0.9), Neighbour("3", 0.5)]]
    assert mrr_at_k(hits, ["3"]) == pytest.approx(0.5)


def test_ndcg_binary_by_hand() -> None:
    # relevant at ranks 1 and 3 of {a, c}: (1 + 1/log2(4)) / (1 + 1/log2(3))
    expected = (1 + 1 / np.log2(4)) / (1 + 1 / np.log2(3))
    assert ndcg_at_k([["a", "b", "c"]], [{"a", "c"}], k=3) == pytest.approx(expected)
    assert ndcg_at_k([["b"]], [set()], k=3) == 0.0


def test_ndcg_matches_sklearn_on_graded_gains() -> None:
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(0)
    gains = rng.integers(0, 4, size=12).astype(float)
    scores = rng.standard_normal(12)
    order = np.argsort(-scores)
    ranked = [[int(i) for i in order]]
    graded = [{i: gains[i] for i in range(12)}]
    for k in (1, 5, 12):
        assert ndcg_at_k(ranked, graded, k=k) == pytest.approx(
            ndcg_score(gains[None], scores[None], k=k))


def test_pearson_matches_scipy() -> None:
    from scipy.stats import pearsonr

    rng = np.random.default_rng(1)
    x, y = rng.standard_normal(50), rng.standard_normal(50)
    assert pearson(x, y) == pytest.approx(pearsonr(x, y)[0])
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)


@pytest.mark.parametrize("call, match", [
    (lambda: mrr_at_k([["a"]], ["a", "b"]), "rankings for 1 queries but relevance for 2"),
    (lambda: mrr_at_k([], []), "at least one ranking"),
    (lambda: mrr_at_k([["a"]], ["a"], k=0), "k must be at least 1"),
    (lambda: mrr_at_k(["abc"], ["a"]), "one string"),
    (lambda: recall_at_k([["a"]], [set()]), "no relevant id"),
    (lambda: label_precision_at_k(["sport"], ["sport"]), "one string"),
    (lambda: ndcg_at_k([["a"]], [{"a": -1.0}]), "non-negative"),
    (lambda: pearson([1, 2], [1, 2, 3]), "same length"),
    (lambda: pearson([1], [1]), "at least two"),
    (lambda: pearson([1, 1, 1], [1, 2, 3]), "constant"),
    (lambda: pearson([1, float("nan")], [1, 2]), "NaN"),
])
def test_bad_input(call, match) -> None:
    with pytest.raises(InputError, match=match):
        call()
