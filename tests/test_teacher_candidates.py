"""benchmarks/teacher_candidates.py: a candidate member's worker, its report, a missing one."""

from __future__ import annotations

import json

import pytest

from benchmarks import teacher_candidates as bench
from benchmarks._tweeteval import TASKS
from tests.conftest import shared_file


def test_an_unknown_or_missing_candidate_is_skipped_not_fatal(tmp_path, capsys):
    (tmp_path / "tasks.json").write_text("{}")
    assert bench.h.run_worker(bench.__file__, "no-such-model", tmp_path) is None
    assert "no-such-model: skipped" in capsys.readouterr().out


def test_the_table_gives_each_task_the_average_and_the_speed_ratio():
    scores = {task: 0.5 for task in TASKS}
    payload = {"results": [
        {"candidate": "minilm", "dim": 384, "scores": scores, "average": 0.5, "texts_per_s": 100},
        {"candidate": "e5-small-q4", "dim": 384, "scores": {**scores, "hate": 0.8},
         "average": 0.55, "texts_per_s": 25}]}
    table = bench.readme_table(payload).splitlines()
    assert table[0].split(" | ")[-3:] == ["average", "texts/s", "x minilm |"]
    assert table[2].endswith("| 50.00 | 100 | 1.00x |")
    assert "| 80.00 |" in table[3] and table[3].endswith("| 55.00 | 25 | 0.25x |")


def test_minilm_worker_scores_every_task_with_its_official_metric(tmp_path):
    shared_file("tweeteval/emotion/train_text.txt")
    pytest.importorskip("onnxruntime")
    tasks = bench.prepare_tasks(max_train=40, max_val=20, seed=0)
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    try:
        result = bench.worker("minilm", tmp_path)
    except ImportError as e:
        pytest.skip(f"the MiniLM teacher is not installed ({e})")
    assert set(result["scores"]) == set(TASKS)
    assert all(0.0 <= s <= 1.0 for s in result["scores"].values())
    assert result["texts"] == sum(len(t["train_texts"]) + len(t["val_texts"])
                                  for t in tasks.values())
    assert result["dim"] == 384 and result["texts_per_s"] > 0


def test_an_ensemble_is_the_mean_of_its_members_log_probabilities(tmp_path):
    import numpy as np

    labels = {"emoji": ["a", "b"], "emotion": ["a", "b"], "hate": ["a", "b"],
              "irony": ["non_irony", "irony"], "offensive": ["a", "b"],
              "stance": ["none", "against", "favor"]}
    tasks = {}
    for name in TASKS:
        n = len(labels[name])
        tasks[name] = {"labels": labels[name], "val_y": [0, 1, 1]}
        confident = np.log(np.full((3, n), 0.1 / (n - 1)))
        for row, label in enumerate([0, 1, 1]):
            confident[row, label] = np.log(0.9)
        wrong = np.log(np.full((3, n), 1.0 / n))
        wrong[:, 0] = np.log(0.6)  # every member but one leans to class 0, mildly
        for member in (*bench.TODAY, *bench.SPARSE):
            np.save(tmp_path / f"{member}-{name}.npy", wrong)
        np.save(tmp_path / f"e5-small-q4-{name}.npy", confident)
    results = [{"candidate": "minilm", "texts_per_s": 100.0},
               {"candidate": "paraphrase-l3", "texts_per_s": 400.0},
               {"candidate": "e5-small-q4", "texts_per_s": 25.0}]
    today, added = bench.ensembles(tasks, tmp_path, results)
    assert today["ensemble"] == "today" and added["ensemble"] == "today + e5-small-q4"
    assert today["teacher_ms_per_text"] == pytest.approx(12.5)
    assert added["teacher_ms_per_text"] == pytest.approx(52.5)
    # one confident member outvotes four mild ones in the mean of log-probabilities
    assert added["scores"]["emotion"] == 1.0 and today["scores"]["emotion"] < 1.0
    assert bench.ensembles(tasks, tmp_path, results[2:]) == []
