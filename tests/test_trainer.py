"""Training students on a tiny synthetic task with a fake (numpy) teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from folder_tools import live

from simtools.data import LabelledData, Split  # noqa: E402
from simtools.distill.augment import perturbed_copies  # noqa: E402
from simtools.distill.config import DistillConfig, Method, parse_methods  # noqa: E402
from simtools.distill.trainer import distill, knn_recall, prepare, sweep, train_student  # noqa: E402

LABELS = ["arts", "money", "sport", "tech"]
SHARED = ["the", "a", "of", "and", "to", "in", "is", "was", "for", "on", "with", "at", "by", "from"]


def _texts(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        c = i % len(LABELS)
        words = [f"{LABELS[c]}{int(rng.integers(0, 12))}" for _ in range(3)]
        words += [f"{LABELS[int(rng.integers(0, 4))]}{int(rng.integers(0, 12))}"]
        words += list(rng.choice(SHARED, 4))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(LABELS[c])
    return Split(texts, labels)


class FakeTeacher:
    """Counts class words: a numpy teacher with logits and 32-d sentence embeddings."""

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        self.word_vectors = {f"{lab}{k}": rng.normal(size=32) + 2 * np.eye(32)[i]
                             for i, lab in enumerate(LABELS) for k in range(12)}
        self.labels = list(reversed(LABELS))  # another column order than the data's

    def fit(self, texts: list[str], labels: list[str]) -> FakeTeacher:
        return self

    def _counts(self, text: str) -> np.ndarray:
        words = text.split()
        return np.array([sum(w.startswith(lab) for w in words) for lab in self.labels], float)

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        z = np.stack([self._counts(t) for t in texts]) * 1.5
        return (z - np.log(np.exp(z).sum(axis=1, keepdims=True))).astype(np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.stack([sum((self.word_vectors.get(w, np.zeros(32)) for w in t.split()),
                            np.zeros(32)) for t in texts]).astype(np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    def member_scores(self, texts: list[str], labels: list[str]) -> dict[str, float]:
        return {"counts": 1.0}


@pytest.fixture(scope="module")
def data() -> LabelledData:
    return LabelledData(_texts(200, 0), _texts(60, 1), None, list(LABELS), "synthetic")


def _config(methods: str, **kw: object) -> DistillConfig:
    base = dict(methods=methods, epochs=3, dim=16, buckets=1 << 12, embedding_dim=8,
                batch_size=16, lr=0.05, augment_copies=1, teacher="fake", seed=0)
    base.update(kw)
    return DistillConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def prepared(data: LabelledData):
    configs = [_config("soft,compression,embedding")]
    return prepare(data, configs, teacher=FakeTeacher(), unlabelled=["sport1 sport2 the", " "])


@pytest.mark.parametrize("methods", ["none", "soft", "logits", "noisy", "compression", "embedding",
                                     "soft,embedding,compression", "logits,noisy"])
def test_every_method_learns(prepared, methods: str) -> None:
    result = train_student(prepared, _config(methods))
    assert result.summary["val_macro_f1"] > 0.8, result.history
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    for record in result.history:
        assert np.isfinite(record["loss"]) and 0 <= record["val_macro_f1"] <= 1
        assert set(record["grad_norm"]) >= {"embedding", "head"}
        assert all(v >= 0 for v in record["grad_norm"].values())


def test_teacher_columns_follow_data_labels(prepared) -> None:
    # the fake teacher lists labels reversed; prepare must reorder its columns
    agree = (prepared.teacher_logits[: len(prepared.val_y)].argmax(axis=1)
             == prepared.y[: len(prepared.val_y)]).mean()
    assert agree > 0.8


def test_compression_grows_the_transfer_set(prepared, data: LabelledData) -> None:
    assert len(prepared.texts) == 2 * len(data.train) + 1  # one copy each + one unlabelled
    assert prepared.synthetic.sum() == len(data.train) + 1 and prepared.y[-1] == -1


def test_unlabelled_texts_reach_every_distilled_student(prepared, data: LabelledData) -> None:
    n = len(data.train)
    assert prepared.perturbed.sum() == n and not prepared.perturbed[-1]
    counts = {m: train_student(prepared, _config(m, epochs=1)).summary["transfer_texts"]
              for m in ("none", "soft", "embedding", "compression")}
    # labels alone; + the unlabelled text; + the unlabelled text and the perturbed copies
    assert counts == {"none": n, "soft": n + 1, "embedding": n + 1, "compression": 2 * n + 1}


def test_unlabelled_texts_are_not_labelled_without_a_teacher_method(data: LabelledData) -> None:
    plain = prepare(data, [_config("none")], teacher=FakeTeacher(), unlabelled=["sport1 the"])
    assert len(plain.texts) == len(data.train) and plain.teacher_logits is None


def test_linear_schedule_is_checked_and_changes_training(prepared) -> None:
    with pytest.raises(ValueError, match="lr_schedule must be one of constant, linear"):
        _config("soft", lr_schedule="cosine")
    held = train_student(prepared, _config("soft"))
    falling = train_student(prepared, _config("soft", lr_schedule="linear"))
    assert falling.summary["val_macro_f1"] > 0.8
    # the same seed and batches: only the step sizes differ
    assert not np.array_equal(held.student.embeddings, falling.student.embeddings)


def test_embedding_student_tracks_teacher_neighbours(prepared) -> None:
    with_embedding = train_student(prepared, _config("soft,embedding", epochs=5))
    without = train_student(prepared, _config("soft", epochs=5))
    recall = with_embedding.summary["val_knn_recall_at_10"]
    assert recall > without.summary["val_knn_recall_at_10"]
    assert with_embedding.student.embedding_dim == 8
    assert with_embedding.student.extra["teacher_pca"].shape == (8, 32)


def test_numpy_student_matches_training_scores(prepared, tmp_path) -> None:
    result = train_student(prepared, _config("soft", quantize=False))
    assert result.summary["val_macro_f1"] == pytest.approx(result.history[-1]["val_macro_f1"])
    result.student.save(tmp_path / "m")
    history = json.loads((live(tmp_path / "m") / "history.json").read_text())
    assert history == json.loads(json.dumps(result.history))


def test_training_is_deterministic(prepared) -> None:
    a = train_student(prepared, _config("soft,noisy"))
    b = train_student(prepared, _config("soft,noisy"))
    np.testing.assert_array_equal(a.student.embeddings, b.student.embeddings)


def test_sweep_one_student_per_setting(data: LabelledData) -> None:
    results = sweep(data, _config("soft", epochs=1), temperatures=[1, 4], alphas=[0.1, 0.9],
                    teacher=FakeTeacher())
    assert [(r.config.temperature, r.config.alpha) for r in results] == \
        [(1, 0.1), (1, 0.9), (4, 0.1), (4, 0.9)]


def test_none_needs_no_teacher(data: LabelledData) -> None:
    result = distill(data, _config("none", epochs=2))
    assert result.summary["teacher"] == {}


def test_unknown_val_label_is_an_error(data: LabelledData) -> None:
    bad = LabelledData(data.train, Split(["x y"], ["weather"]), None, list(LABELS), "bad")
    with pytest.raises(ValueError, match="weather"):
        prepare(bad, _config("none"))


def test_teacher_missing_a_label_is_an_error(data: LabelledData) -> None:
    teacher = FakeTeacher()
    teacher.labels = ["arts", "money", "sport", "other"]
    with pytest.raises(ValueError, match="does not know the labels"):
        prepare(data, _config("soft"), teacher=teacher)


def test_embedding_needs_teacher_vectors(data: LabelledData) -> None:
    prepared = prepare(data, _config("soft"), teacher=FakeTeacher())
    with pytest.raises(ValueError, match="sentence embeddings"):
        train_student(prepared, _config("embedding"))


def test_teacher_methods_need_teacher_outputs(data: LabelledData) -> None:
    prepared = prepare(data, _config("none"))
    with pytest.raises(ValueError, match="needs the teacher"):
        train_student(prepared, _config("soft"))


def test_perturbed_copies_deterministic() -> None:
    texts = ["one two three four five", "six seven eight"]
    a, src = perturbed_copies(texts, 3, seed=1)
    b, _ = perturbed_copies(texts, 3, seed=1)
    assert a == b and len(a) == 6 and list(src) == [0, 1] * 3
    assert all(t.strip() for t in a)


def test_knn_recall_identical_is_one(rng: np.random.Generator) -> None:
    x = rng.normal(size=(30, 5)).astype(np.float32)
    assert knn_recall(x, x, 5) == pytest.approx(1.0)


# -- configuration checks: one per branch ----------------------------------------------------
def test_parse_methods_orders_and_dedups() -> None:
    assert parse_methods("embedding, soft,soft") == (Method.SOFT, Method.EMBEDDING)


def test_parse_methods_unknown() -> None:
    with pytest.raises(ValueError, match="unknown distillation method 'sofft'"):
        parse_methods("sofft")


def test_parse_methods_empty() -> None:
    with pytest.raises(ValueError, match="no distillation method"):
        parse_methods(" , ")


def test_parse_methods_none_alone() -> None:
    with pytest.raises(ValueError, match="cannot be combined"):
        parse_methods("none,soft")


@pytest.mark.parametrize("field,value,message", [
    ("temperature", 0.0, "temperature must be between"),
    ("alpha", 1.5, "alpha must be between"),
    ("epochs", 0, "epochs must be between"),
    ("dim", 2, "dim must be between"),
    ("embedding_dim", 0, "embedding_dim must be between"),
    ("word_ngrams", 3, "word_ngrams must be between"),
    ("max_chars", 0, "max_chars must be between"),
    ("augment_copies", -1, "augment_copies must be between"),
    ("batch_size", 0, "batch_size must be between"),
    ("seed", -1, "seed must be between"),
    ("buckets", 1, "buckets must be between"),
    ("buckets", 1000, "power of two"),
    ("char_ngrams", (2, 4), "char_ngrams must be"),
    ("lr", 0.0, "lr must be between"),
    ("embedding_weight", -1.0, "embedding_weight must be between"),
    ("noise_std", -1.0, "noise_std must be between"),
    ("noise_fraction", 2.0, "noise_fraction must be between"),
    ("teacher", " ", "teacher must be a teacher spec"),
])
def test_config_rejects(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DistillConfig(**{field: value})  # type: ignore[arg-type]


def test_config_rejects_wrong_types() -> None:
    with pytest.raises(TypeError, match="epochs must be an integer"):
        DistillConfig(epochs=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="alpha must be a number"):
        DistillConfig(alpha="high")  # type: ignore[arg-type]
