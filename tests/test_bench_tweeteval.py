"""benchmarks/_tweeteval.py: the official TweetEval metrics, batched, and the paired bootstrap
that puts an interval on "distilled beats hard labels"."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from benchmarks._tweeteval import official_score, paired_bootstrap
from simtools.evaluation import f1_per_class

STANCE = ["none", "against", "favor"]


def _labels(seed, shape, n_classes):
    return np.random.default_rng(seed).integers(0, n_classes, shape)


def test_f1_per_class_matches_sklearn_and_counts_absent_classes_zero():
    y, p = _labels(0, 200, 4), _labels(1, 200, 4)
    np.testing.assert_allclose(f1_per_class(y, p, 4),
                               metrics.f1_score(y, p, average=None, labels=range(4)))
    # class 3 is neither true nor predicted: its F1 is 0, not NaN
    np.testing.assert_array_equal(f1_per_class(np.array([0, 1]), np.array([0, 1]), 4),
                                  [1.0, 1.0, 0.0, 0.0])


def test_batched_f1_and_scores_equal_row_by_row():
    Y, P = _labels(2, (6, 150), 3), _labels(3, (6, 150), 3)
    batched = f1_per_class(Y, P, 3)
    assert batched.shape == (6, 3)
    for row in range(6):
        np.testing.assert_allclose(batched[row], f1_per_class(Y[row], P[row], 3))
    for task in ("emotion", "irony", "stance"):
        labels = STANCE if task == "stance" else ["non_irony", "irony", "x"]
        scores = official_score(task, labels, Y, P)
        assert scores.shape == (6,)
        np.testing.assert_allclose(scores, [official_score(task, labels, Y[r], P[r])
                                            for r in range(6)])


def test_official_metrics_pick_the_papers_classes():
    y, p = _labels(4, 300, 3), _labels(5, 300, 3)
    f1 = metrics.f1_score(y, p, average=None, labels=range(3))
    assert official_score("emotion", ["a", "b", "c"], y, p) == pytest.approx(f1.mean())
    assert official_score("irony", ["non_irony", "irony", "c"], y, p) == pytest.approx(f1[1])
    assert official_score("stance", STANCE, y, p) == pytest.approx((f1[1] + f1[2]) / 2)
    with pytest.raises(ValueError, match="lack"):
        official_score("stance", ["none", "against", "neutral"], y, p)


def test_paired_bootstrap_of_identical_students_is_exactly_zero():
    y = _labels(6, 250, 4)
    same = [_labels(7, 250, 4), _labels(8, 250, 4)]
    result = paired_bootstrap("emotion", list("abcd"), y, same, same, n_resamples=200)
    assert result["difference"] == 0 and result["ci95"] == [0, 0]
    assert result["share_b_ahead"] == 0


def test_paired_bootstrap_separates_a_better_student_and_is_antisymmetric():
    rng = np.random.default_rng(9)
    y = _labels(10, 400, 4)
    weak = [np.where(rng.random(400) < 0.3, y, _labels(11 + s, 400, 4)) for s in range(3)]
    strong = [np.where(rng.random(400) < 0.8, y, _labels(21 + s, 400, 4)) for s in range(3)]
    ahead = paired_bootstrap("emotion", list("abcd"), y, weak, strong, n_resamples=300, seed=1)
    low, high = ahead["ci95"]
    assert 0 < low < ahead["difference"] < high and ahead["share_b_ahead"] == 1
    behind = paired_bootstrap("emotion", list("abcd"), y, strong, weak, n_resamples=300, seed=1)
    assert behind["difference"] == -ahead["difference"]
    assert behind["ci95"] == pytest.approx([-high, -low], abs=0.011)
    assert behind["share_b_ahead"] == 0
    # the same seed draws the same resamples
    assert paired_bootstrap("emotion", list("abcd"), y, weak, strong, n_resamples=300,
                            seed=1) == ahead


def test_paired_bootstrap_interval_straddles_zero_when_students_trade_a_few_tweets():
    y = _labels(30, 300, 4)
    a = np.where(np.random.default_rng(31).random(300) < 0.6, y, _labels(32, 300, 4))
    b = a.copy()
    right, wrong = np.flatnonzero(a == y)[:5], np.flatnonzero(a != y)[:5]
    b[right] = (y[right] + 1) % 4  # b breaks five tweets a gets right ...
    b[wrong] = y[wrong]  # ... and fixes five a gets wrong
    result = paired_bootstrap("emotion", list("abcd"), y, [a], [b], n_resamples=500)
    low, high = result["ci95"]
    assert low < 0 < high and 0.05 < result["share_b_ahead"] < 0.95


def test_folds_score_every_train_and_val_tweet_once_by_models_that_never_saw_it():
    from benchmarks._tweeteval import Task
    from benchmarks.distill_seeds import folds_of

    y = np.array([0] * 30 + [1] * 15 + [2] * 5)
    texts = [f"tweet {i}" for i in range(len(y))]
    task = Task(name="emotion", labels=["a", "b", "c"], train_texts=texts[:40], train_y=y[:40],
                val_texts=texts[40:], val_y=y[40:], full_sizes={"train": 40, "val": 10})
    folds = folds_of(task, 5)
    held = [t for fold in folds for t in fold.val_texts]
    assert sorted(held) == sorted(texts)  # every tweet scored exactly once
    for fold in folds:
        assert not set(fold.val_texts) & set(fold.train_texts)
        assert len(fold.train_texts) + len(fold.val_texts) == len(texts)
        assert np.bincount(fold.val_y, minlength=3).tolist() == [6, 3, 1]  # stratified
        assert all(y[texts.index(t)] == label for t, label in zip(fold.val_texts, fold.val_y))
    assert [f.val_texts for f in folds_of(task, 5)] == [f.val_texts for f in folds]  # seeded
