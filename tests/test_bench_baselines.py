"""The TF-IDF + logistic-regression baseline of the classification benchmarks."""

from __future__ import annotations

import numpy as np

from benchmarks._baselines import C_GRID, fit_tfidf_lr


def test_the_baseline_picks_c_by_cross_validation_and_learns_separable_data() -> None:
    rng = np.random.default_rng(0)
    words = {0: ["goal", "match", "team"], 1: ["shares", "profit", "bank"], 2: ["film", "actor", "award"]}
    y = np.arange(90) % 3
    texts = [" ".join(rng.choice(words[c], 3)) + " " + " ".join(rng.choice(["the", "a", "today"], 2))
             for c in y]
    model, info = fit_tfidf_lr(texts, y, folds=3)
    assert info["C"] in C_GRID and set(info["cv_macro_f1"]) == {str(c) for c in C_GRID}
    assert model.predict(["the goal of the match", "bank profit today", "an award for the actor"]).tolist() == [0, 1, 2]
