"""One student per group (the stance task's targets): routing, persistence, training, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from folder_tools import live, reseal

from simtools.data import load_labelled
from simtools.errors import FormatError, InputError
from simtools.evaluation import evaluate_classifier
from simtools.student import GroupedStudents, StudentClassifier, load_model
from simtools.student.featurizer import HashingFeaturizer

LABELS = ["none", "against", "favor"]


def _student(seed: int, labels: list[str] = LABELS) -> StudentClassifier:
    rng = np.random.default_rng(seed)
    return StudentClassifier(
        HashingFeaturizer(buckets=1 << 10), labels,
        embeddings=rng.normal(size=(1 << 10, 8)).astype(np.float32),
        head_weight=rng.normal(size=(8, len(labels))).astype(np.float32),
        head_bias=rng.normal(size=len(labels)).astype(np.float32))


def _model() -> GroupedStudents:
    return GroupedStudents({"climate": _student(1), "atheism": _student(2)})


TEXTS = ["faith gives my life meaning", "the ice is melting", "we must act now", "!!!"]


def test_each_text_goes_to_its_groups_student() -> None:
    model = _model()
    groups = ["atheism", "climate", "climate", "atheism"]
    proba, known = model.predict_proba_known(TEXTS, groups, check_scripts=False)
    for i, (text, group) in enumerate(zip(TEXTS, groups, strict=True)):
        alone, alone_known = model.student(group).predict_proba_known([text], check_scripts=False)
        np.testing.assert_array_equal(proba[i], alone[0])
        assert known[i] == alone_known[0]
    assert model.predict(TEXTS[:3], "climate") == model.student("climate").predict(TEXTS[:3])
    assert model.groups == ["atheism", "climate"] and model.labels == LABELS


def test_bad_groups_and_students_are_errors() -> None:
    model = _model()
    with pytest.raises(InputError, match="no target 'hillary'; its targets are atheism, climate"):
        model.predict(TEXTS, "hillary")
    with pytest.raises(InputError, match="4 texts but 2 groups"):
        model.predict(TEXTS, ["climate", "atheism"])
    with pytest.raises(InputError, match="every group needs the same labels"):
        GroupedStudents({"a": _student(1), "b": _student(2, ["x", "y", "z"])})
    with pytest.raises(InputError, match="names a folder"):
        GroupedStudents({"../up": _student(1)})
    with pytest.raises(InputError, match="at least one"):
        GroupedStudents({})


def test_save_load_round_trip_and_load_model_reads_either_kind(tmp_path: Path) -> None:
    model = _model()
    model.save(tmp_path / "stance")
    loaded = load_model(tmp_path / "stance")
    assert isinstance(loaded, GroupedStudents) and loaded.groups == model.groups
    groups = ["atheism", "climate", "climate", "atheism"]
    np.testing.assert_array_equal(loaded.predict_logits(TEXTS, groups, strict=False),
                                  model.predict_logits(TEXTS, groups, strict=False))
    _student(3).save(tmp_path / "one")
    assert isinstance(load_model(tmp_path / "one"), StudentClassifier)
    with pytest.raises(FormatError, match="expected 'student'"):
        StudentClassifier.load(tmp_path / "stance")


@pytest.mark.parametrize("damage, message", [
    (lambda c: c.update(groups=["../../etc"]), "list of folder names"),
    (lambda c: c.update(groups=["atheism", "hillary"]), "lacks the student of group 'hillary'"),
    (lambda c: c.update(format_version=9), "format version 9"),
])
def test_a_damaged_grouped_folder_fails_at_load(tmp_path: Path, damage, message) -> None:
    _model().save(tmp_path / "stance")
    config_file = live(tmp_path / "stance") / "config.json"
    config = json.loads(config_file.read_text())
    damage(config)
    config_file.write_text(json.dumps(config))
    reseal(tmp_path / "stance")
    with pytest.raises(FormatError, match=message):
        load_model(tmp_path / "stance")


def test_evaluate_classifier_routes_by_group() -> None:
    model = _model()
    groups = ["atheism", "climate", "climate"]
    labels = model.predict(TEXTS[:3], groups)
    scores = evaluate_classifier(model, TEXTS[:3], labels, groups=groups)
    assert scores["accuracy"] == 1.0 and scores["n"] == 3


# -- training and the CLI, on a small stance-like folder ------------------------------------------
def _stance_folder(root: Path) -> Path:
    """Two targets whose words mean opposite stances: only a model per target can learn both."""
    rng = np.random.default_rng(0)
    for target, favour, against in (("atheism", "reason", "prayer"), ("religion", "prayer", "reason")):
        for split, n in (("train", 120), ("val", 30)):
            texts, labels = [], []
            for i in range(n):
                label = i % 2 + 1  # 1 against, 2 favor
                word = favour if label == 2 else against
                filler = " ".join(rng.choice(["the", "a", "day", "talk", "news"], 3))
                texts.append(f"{word} {filler}")
                labels.append(str(label))
            (root / target).mkdir(parents=True, exist_ok=True)
            (root / target / f"{split}_text.txt").write_text("\n".join(texts) + "\n")
            (root / target / f"{split}_labels.txt").write_text("\n".join(labels) + "\n")
    (root / "mapping.txt").write_text("0\tnone\n1\tagainst\n2\tfavor\n")
    return root


def test_data_in_target_folders_keeps_each_texts_target(tmp_path: Path) -> None:
    data = load_labelled(_stance_folder(tmp_path / "stance"))
    assert data.groups == ["atheism", "religion"]
    part = data.group("religion")
    assert len(part.train) == 120 and len(part.val) == 30 and part.labels == LABELS
    assert set(part.train.groups or []) == {"religion"}
    with pytest.raises(InputError, match="no group 'climate'"):
        data.group("climate")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SIMTOOLS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


SMALL = ["--epochs", "8", "--lr", "0.5", "--dim", "16", "--buckets", "4096", "--method", "none",
         "--quiet"]


def test_distill_trains_a_student_per_target_and_classify_and_evaluate_use_it(env: Path) -> None:
    pytest.importorskip("torch")
    from simtools_cli.main import main

    data = _stance_folder(env / "stance")
    runner = CliRunner()
    result = runner.invoke(main, ["distill", "--data", str(data), "--out", str(env / "m"), *SMALL])
    assert result.exit_code == 0, result.output
    model = load_model(env / "m")
    assert isinstance(model, GroupedStudents) and model.groups == ["atheism", "religion"]
    # the same word takes opposite stances by target
    for target, want in (("atheism", "favor"), ("religion", "against")):
        out = runner.invoke(main, ["classify", "--model", str(env / "m"), "--target", target,
                                   "reason the day"])
        assert out.exit_code == 0, out.output
        assert out.stdout.split("\t")[0] == want
    scored = runner.invoke(main, ["evaluate", "--model", str(env / "m"), "--data", str(data),
                                  "--json", "--f1-of", "favor,against"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["n"] == 60 and json.loads(scored.stdout)["accuracy"] > 0.9
    pooled = runner.invoke(main, ["distill", "--data", str(data), "--out", str(env / "p"),
                                  "--pool-targets", *SMALL])
    assert pooled.exit_code == 0 and isinstance(load_model(env / "p"), StudentClassifier)
    pooled_scores = runner.invoke(main, ["evaluate", "--model", str(env / "p"), "--data",
                                         str(data), "--json"])
    assert json.loads(pooled_scores.stdout)["accuracy"] < 0.75  # one model cannot learn both


def test_target_errors_say_what_to_do(env: Path) -> None:
    from simtools_cli.main import main

    _model().save(env / "m")
    _student(3).save(env / "one")
    runner = CliRunner()
    result = runner.invoke(main, ["classify", "--model", str(env / "m"), "a text"])
    assert result.exit_code == 2 and "one student per target (atheism, climate)" in result.output
    result = runner.invoke(main, ["classify", "--model", str(env / "m"), "--target", "x", "a"])
    assert result.exit_code == 1 and "no target 'x'" in result.output
    result = runner.invoke(main, ["classify", "--model", str(env / "one"), "--target", "x", "a"])
    assert result.exit_code == 2 and "leave --target out" in result.output
    data = env / "d.csv"
    data.write_text("text,label\n" + "".join(f"text {i},{LABELS[i % 3]}\n" for i in range(30)))
    result = runner.invoke(main, ["evaluate", "--model", str(env / "m"), "--data", str(data)])
    assert result.exit_code == 2 and "give --target NAME" in result.output
    result = runner.invoke(main, ["evaluate", "--model", str(env / "m"), "--data", str(data),
                                  "--target", "climate", "--split", "all", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["n"] == 30
