"""The library side of `simtools distill` and `simtools evaluate`: sweep winner, rows, plot, scores."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from simtools.distill.report import best_result, plot_sweep, sweep_rows
from simtools.errors import InputError
from simtools.evaluation import evaluate_classifier


def result(f1, temperature=4.0):
    return SimpleNamespace(summary={"methods": ["soft"], "temperature": temperature, "alpha": 0.5,
                                    "val_macro_f1": f1, "val_accuracy": f1})


def test_the_winner_is_the_best_validation_f1_first_of_equals():
    results = [result(0.5, 1), result(0.7, 2), result(0.7, 4)]
    assert best_result(results) is results[1]
    with pytest.raises(ValueError, match="trained no student"):
        best_result([])


def test_rows_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    rows = sweep_rows([result(0.5, 1), result(0.7, 2)])
    assert [r["temperature"] for r in rows] == [1, 2] and rows[0]["methods"] == "soft"
    assert plot_sweep(rows, tmp_path / "p" / "sweep.png").stat().st_size > 1000


class Fixed:
    labels = ["a", "b", "c"]

    def predict_logits(self, texts, strict=True):
        return np.eye(3)[[{"x": 0, "y": 1, "z": 2}[t] for t in texts]]


def test_evaluate_classifier_scores_and_f1_of():
    scores = evaluate_classifier(Fixed(), ["x", "y", "z", "x"], ["a", "b", "a", "a"],
                                 f1_of=["a", "b"])
    assert scores["accuracy"] == 0.75 and scores["labels"] == ["a", "b", "c"]
    assert scores["f1_of"]["mean_f1"] == pytest.approx((0.8 + 1.0) / 2)
    with pytest.raises(InputError, match="does not know: d"):
        evaluate_classifier(Fixed(), ["x"], ["d"])
    with pytest.raises(InputError, match="f1_of must name labels of the model; q not among"):
        evaluate_classifier(Fixed(), ["x"], ["a"], f1_of=["q"])
