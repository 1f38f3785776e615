"""The numpy student: equal to the torch model it was trained as, persistence, the encoder."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from folder_tools import live, reseal

from simtools.evaluation import score_predictions
from simtools.persistence import FormatError
from simtools.student import StudentClassifier
from simtools.student.featurizer import HashingFeaturizer
from simtools.student.quantize import quantize_rows

TEXTS = ["the match ended in a goal", "shares fell after the profit warning",
         "안녕하세요 세계", "😂🔥😂", "a", "new phone chips and software released today"]


def _model(rng: np.random.Generator, *, quantize: bool = False, proj: bool = True,
           classes: int = 3) -> StudentClassifier:
    featurizer = HashingFeaturizer(buckets=1 << 10)
    table = rng.normal(size=(1 << 10, 8)).astype(np.float32)
    scale = None
    if quantize:
        table, scale = quantize_rows(table)
    return StudentClassifier(
        featurizer, [f"c{i}" for i in range(classes)], embeddings=table, scale=scale,
        head_weight=rng.normal(size=(8, classes)).astype(np.float32),
        head_bias=rng.normal(size=classes).astype(np.float32),
        proj_weight=rng.normal(size=(8, 6)).astype(np.float32) if proj else None,
        proj_bias=np.zeros(6, np.float32) if proj else None)


def test_numpy_logits_equal_torch(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    model = _model(rng)
    bag = torch.nn.EmbeddingBag(1 << 10, 8, mode="mean")
    head = torch.nn.Linear(8, 3)
    with torch.no_grad():
        bag.weight.copy_(torch.from_numpy(model.embeddings))
        head.weight.copy_(torch.from_numpy(model.head_weight.T.copy()))
        head.bias.copy_(torch.from_numpy(model.head_bias))
        ids, offsets = model.featurizer.transform(TEXTS).bags()
        pooled = bag(torch.from_numpy(ids), torch.from_numpy(offsets))
        expected = head(pooled).numpy()
    np.testing.assert_allclose(model.predict_logits(TEXTS), expected, atol=1e-5)
    np.testing.assert_allclose(model.pooled(TEXTS), pooled.numpy(), atol=1e-5)


def test_many_chunks_equal_one_by_one(rng: np.random.Generator) -> None:
    model = _model(rng)
    texts = [f"text number {i} {TEXTS[i % len(TEXTS)]}" for i in range(9000)]
    together = model.predict_logits(texts)
    alone = np.concatenate([model.predict_logits([t]) for t in texts[:: 997]])
    np.testing.assert_allclose(together[:: 997], alone, atol=1e-5)


@pytest.mark.parametrize("width", [3, 8, 64])
def test_sparse_product_and_gather_sum_alike(rng: np.random.Generator, monkeypatch, width) -> None:
    from simtools.student import model as module

    model = _model(rng)
    texts = [*TEXTS, " ", *(f"more text {i} here" for i in range(50))]
    feats = model.featurizer.transform(texts)
    table = rng.normal(size=(1 << 10, width)).astype(np.float32)
    monkeypatch.setattr(module, "_GATHER_MAX_FLOATS", 1 << 40)
    gathered = model._pooled_sum(feats, table)
    monkeypatch.setattr(module, "_GATHER_MAX_FLOATS", 0)
    monkeypatch.setattr(module, "_GATHER_MAX_WIDTH", 0)
    summed = model._pooled_sum(feats, table)
    np.testing.assert_allclose(summed, gathered, rtol=1e-5, atol=1e-5)
    assert not summed[len(TEXTS)].any()  # the blank text: no features, zero sum
    # and the embeddings through the public path agree as well
    model_embed = model.embed(texts)
    monkeypatch.setattr(module, "_GATHER_MAX_FLOATS", 1 << 40)
    model._embed_table = None
    np.testing.assert_allclose(model.embed(texts), model_embed, rtol=1e-5, atol=1e-5)


# texts with no features at all ("!!!", "😂😂😂" under a small featurizer) and texts of unknown
# scripts, put before and after the text under test
_NEIGHBOURS = ["!!!", "😂😂😂", "é", "안녕하세요", " ", "another text entirely"]


@pytest.mark.parametrize("quantize", [False, True])
@pytest.mark.parametrize("proj", [False, True])
@pytest.mark.parametrize("gather", [True, False])
def test_a_prediction_does_not_depend_on_the_other_texts_in_the_batch(
        rng: np.random.Generator, monkeypatch, quantize, proj, gather) -> None:
    from simtools.student import model as module

    if not gather:  # the sparse-product path
        monkeypatch.setattr(module, "_GATHER_MAX_FLOATS", 0)
        monkeypatch.setattr(module, "_GATHER_MAX_WIDTH", 0)
    model = _model(rng, quantize=quantize, proj=proj)
    for text in ["I am so happy today", *TEXTS]:
        alone = model.predict_proba_known([text])[0][0]
        batches = [[text, *_NEIGHBOURS], [*_NEIGHBOURS, text],
                   [_NEIGHBOURS[0], text, *_NEIGHBOURS[1:]], [text, "!!!"], [text, " ", " "]]
        for batch in batches:
            proba = model.predict_proba_known(batch)[0][batch.index(text)]
            np.testing.assert_array_equal(proba, alone, err_msg=f"{text!r} in {batch}")
        if model.embedding_dim:
            np.testing.assert_array_equal(model.embed([text, "!!!"])[0], model.embed([text])[0])


def test_int8_close_to_float(rng: np.random.Generator) -> None:
    table = rng.normal(size=(256, 16)).astype(np.float32)
    q, scale = quantize_rows(table)
    assert q.dtype == np.int8 and scale.shape == (256,)
    assert np.abs(q * scale[:, None] - table).max() <= scale.max() / 2 + 1e-6
    exact = _model(np.random.default_rng(1))
    approx = _model(np.random.default_rng(1), quantize=True)
    np.testing.assert_allclose(approx.predict_logits(TEXTS), exact.predict_logits(TEXTS), atol=0.05)


def test_proba_top_k_and_predict(rng: np.random.Generator) -> None:
    model = _model(rng)
    proba = model.predict_proba(TEXTS)
    assert proba.dtype == np.float32 and proba.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    top = model.top_k(TEXTS, k=2)
    assert [row[0][0] for row in top] == model.predict(TEXTS)
    assert all(row[0][1] >= row[1][1] for row in top)


def test_top_k_rejects_bad_k(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        _model(rng).top_k(TEXTS, k=0)


def test_empty_text_is_an_error(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="empty or has no words"):
        _model(rng).predict_proba(["fine", "   "])


def test_single_string_is_an_error(rng: np.random.Generator) -> None:
    with pytest.raises(TypeError, match="wrap it in a list"):
        _model(rng).predict_proba("one text")


def test_embed_normalised_and_zero_for_empty(rng: np.random.Generator) -> None:
    vectors = _model(rng).embed([*TEXTS, " "])
    assert vectors.shape == (len(TEXTS) + 1, 6)
    np.testing.assert_allclose(np.linalg.norm(vectors[:-1], axis=1), 1.0, atol=1e-5)
    assert not vectors[-1].any()


def test_save_load_round_trip(rng: np.random.Generator, tmp_path) -> None:
    model = _model(rng, quantize=True)
    model.history = [{"epoch": 1, "loss": 0.5}]
    model.save(tmp_path / "m")
    again = StudentClassifier.load(tmp_path / "m")
    np.testing.assert_array_equal(again.predict_logits(TEXTS), model.predict_logits(TEXTS))
    assert again.labels == model.labels and again.quantized and again.history == model.history
    config = json.loads((live(tmp_path / "m") / "config.json").read_text())
    assert config["kind"] == "model" and config["type"] == "student" and config["format_version"] == 1


def test_load_rejects_other_format_version(rng: np.random.Generator, tmp_path) -> None:
    _model(rng).save(tmp_path / "m")
    config = json.loads((live(tmp_path / "m") / "config.json").read_text())
    config["format_version"] = 99
    (live(tmp_path / "m") / "config.json").write_text(json.dumps(config))
    reseal(tmp_path / "m")
    with pytest.raises(FormatError, match="format version 99"):
        StudentClassifier.load(tmp_path / "m")


def test_load_rejects_other_model_type(rng: np.random.Generator, tmp_path) -> None:
    _model(rng).save(tmp_path / "m")
    config = json.loads((live(tmp_path / "m") / "config.json").read_text())
    config["type"] = "teacher"
    (live(tmp_path / "m") / "config.json").write_text(json.dumps(config))
    reseal(tmp_path / "m")
    with pytest.raises(FormatError, match="expected 'student'"):
        StudentClassifier.load(tmp_path / "m")


def test_load_rejects_inconsistent_weights(rng: np.random.Generator, tmp_path) -> None:
    _model(rng).save(tmp_path / "m")
    config = json.loads((live(tmp_path / "m") / "config.json").read_text())
    config["labels"] = ["only", "two"]
    (live(tmp_path / "m") / "config.json").write_text(json.dumps(config))
    reseal(tmp_path / "m")
    with pytest.raises(FormatError, match="inconsistent"):
        StudentClassifier.load(tmp_path / "m")


def test_classify_path_imports_no_heavy_library(rng: np.random.Generator, tmp_path) -> None:
    _model(rng).save(tmp_path / "m")
    code = ("import sys\nfrom simtools.student import StudentClassifier\n"
            f"m = StudentClassifier.load({str(tmp_path / 'm')!r})\n"
            "m.predict_proba(['one tweet'])\n"
            "print(sorted(x for x in ('torch', 'sklearn', 'scipy') if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_score_predictions_matches_sklearn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    y_true = np.array([0, 1, 2, 2, 1, 0, 3])
    y_pred = np.array([0, 2, 2, 2, 1, 1, 0])
    scores = score_predictions(y_true, y_pred, 5)
    assert scores["accuracy"] == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert scores["macro_f1"] == pytest.approx(
        metrics.f1_score(y_true, y_pred, average="macro", labels=range(5), zero_division=0))
    assert scores["confusion_matrix"] == metrics.confusion_matrix(y_true, y_pred, labels=range(5)).tolist()
    np.testing.assert_allclose(scores["f1_per_class"], metrics.f1_score(
        y_true, y_pred, average=None, labels=range(5), zero_division=0))


def test_student_encoder_round_trip(rng: np.random.Generator, tmp_path) -> None:
    from simtools.encoders.base import load_encoder
    from simtools.encoders.student import StudentEncoder

    model = _model(rng)
    model.save(tmp_path / "m")
    encoder = StudentEncoder.from_model(tmp_path / "m")
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), encoder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, model.embed(TEXTS), atol=1e-6)
    encoder.save(tmp_path / "enc")
    again = load_encoder(tmp_path / "enc")
    assert isinstance(again, StudentEncoder)
    np.testing.assert_array_equal(again.encode(TEXTS), vectors)
    fitted = StudentEncoder(model_path=str(tmp_path / "m")).fit(["anything"])
    np.testing.assert_array_equal(fitted.encode(TEXTS), vectors)


def test_student_encoder_unfitted_dim() -> None:
    from simtools.encoders.student import StudentEncoder

    with pytest.raises(AttributeError, match="not fitted"):
        StudentEncoder().dim  # noqa: B018


def test_script_pages_and_mask() -> None:
    from simtools.student.featurizer import N_PAGES, page_mask, script_pages

    assert script_pages(["Hello world", "café 42"]) == [0]
    hangul = script_pages(["안녕하세요 세계", "hello"])
    assert hangul[0] == 0 and all(0xAC <= p <= 0xD7 for p in hangul[1:]) and len(hangul) > 2
    mask = page_mask([0, 0xAC])
    assert mask.shape == (N_PAGES,) and mask.sum() == 2 and mask[0xAC]


def test_known_words_counts_words_in_known_pages() -> None:
    from simtools.student.featurizer import page_mask

    feats = HashingFeaturizer(buckets=1 << 10).transform(
        ["Hello, world!", "안녕 hi", "🎉🎉", "!!!"], known_pages=page_mask([0]))
    assert feats.known_words.tolist() == [2, 1, 0, 0]


def test_unknown_script_is_an_error_only_when_checked(rng: np.random.Generator) -> None:
    model = _model(rng)
    model.config["known_pages"] = [0]
    texts = ["a plain english text", "안녕하세요", "🎉🎉"]
    with pytest.raises(ValueError, match=r"2 text\(s\) have no letter or digit.*text 2 \('안녕하세요'\)"):
        model.predict_proba(texts, check_scripts=True)
    proba, known = model.predict_proba_known(texts)
    assert known.tolist() == [True, False, False] and np.allclose(proba.sum(axis=1), 1)
    assert model.predict_proba(texts).shape == (3, len(model.labels))  # unchecked: classified
    del model.config["known_pages"]  # a model saved without the record skips the check
    assert model.predict_proba(texts, check_scripts=True).shape == (3, len(model.labels))


# -- damaged weights and config fail at load, as FormatError ------------------------------------
def _state(model: StudentClassifier) -> tuple[dict, dict]:
    config = {"labels": model.labels, "featurizer": model.featurizer.params(),
              "known_pages": [0, 1]}
    return config, dict(model.arrays())


@pytest.mark.parametrize("name", ["embeddings", "head_weight", "head_bias", "proj_weight",
                                  "embeddings_scale"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_from_state_rejects_non_finite_weights(rng: np.random.Generator, name, bad) -> None:
    config, arrays = _state(_model(rng, quantize=name == "embeddings_scale"))
    arrays[name] = arrays[name].astype(np.float32)
    arrays[name].flat[-1] = bad
    with pytest.raises(FormatError, match=f"{name} holds 1 NaN or infinite value"):
        StudentClassifier.from_state(config, arrays)


@pytest.mark.parametrize("pages", [[0, 0x1100], [-1], [1.5], ["0"], [True], 3])
def test_from_state_rejects_out_of_range_known_pages(rng: np.random.Generator, pages) -> None:
    config, arrays = _state(_model(rng))
    config["known_pages"] = pages
    with pytest.raises(FormatError, match="known_pages must be a list of code-point pages from 0 to 4351"):
        StudentClassifier.from_state(config, arrays)


@pytest.mark.parametrize("name, shape", [("head_bias", (2,)), ("embeddings_scale", (5,)),
                                         ("proj_bias", (4,))])
def test_from_state_rejects_wrong_shapes(rng: np.random.Generator, name, shape) -> None:
    config, arrays = _state(_model(rng, quantize=True))
    arrays[name] = np.zeros(shape, np.float32)
    with pytest.raises(FormatError, match=f"{name} has shape"):
        StudentClassifier.from_state(config, arrays)


def test_from_state_rejects_int8_without_scale(rng: np.random.Generator) -> None:
    config, arrays = _state(_model(rng, quantize=True))
    del arrays["embeddings_scale"]
    with pytest.raises(FormatError, match="int8 embeddings need embeddings_scale"):
        StudentClassifier.from_state(config, arrays)


def test_a_saved_model_with_nan_weights_fails_at_load(rng: np.random.Generator, tmp_path) -> None:
    model = _model(rng)
    model.head_bias[0] = np.nan
    model.save(tmp_path / "m")
    with pytest.raises(FormatError, match="inconsistent.*head_bias holds 1 NaN"):
        StudentClassifier.load(tmp_path / "m")


def test_predict_proba_known_answers_every_text(rng: np.random.Generator) -> None:
    model = _model(rng)
    model.config["known_pages"] = [0]  # Basic Latin and Latin-1 only
    texts = ["a goal", "", "\x01\x02", "안녕하세요", "\U0001F440", "shares fell"]
    proba, known = model.predict_proba_known(texts)
    assert proba.shape == (6, 3) and np.isfinite(proba).all()
    assert known.tolist() == [True, False, False, False, False, True]
    np.testing.assert_allclose(proba[[0, 5]], model.predict_proba(["a goal", "shares fell"]))
    _, known = model.predict_proba_known(texts, check_scripts=False)
    assert known.tolist() == [True, False, False, True, True, True]


def test_the_old_module_paths_still_work_with_a_deprecation_warning() -> None:
    import importlib
    import sys

    for name in ("simtools.classify.student", "simtools.encoders._hashing"):
        sys.modules.pop(name, None)
        with pytest.warns(DeprecationWarning, match="moved to simtools.student"):
            module = importlib.import_module(name)
        assert module.__name__ == name
    from simtools.classify.student import StudentClassifier as Old
    from simtools.encoders._hashing import HashingFeaturizer as OldFeaturizer

    assert Old is StudentClassifier and OldFeaturizer is HashingFeaturizer


def test_a_student_encoder_keeps_the_student_in_its_one_model_format(tmp_path) -> None:
    from simtools.encoders import load_encoder
    from simtools.encoders.base import Encoder
    from simtools.encoders.student import StudentEncoder

    encoder = StudentEncoder.from_model()
    encoder.save(tmp_path / "enc")
    files = live(tmp_path / "enc")
    assert (files / "model" / "model.safetensors").is_file()
    assert not (files / "encoder.safetensors").exists()
    again = load_encoder(tmp_path / "enc")
    np.testing.assert_array_equal(again.encode(TEXTS), encoder.encode(TEXTS))
    # the model inside is an ordinary model folder
    np.testing.assert_array_equal(StudentClassifier.load(files / "model").embed(TEXTS),
                                  encoder.encode(TEXTS))
    # a folder of simtools 0.1 (the model's arrays in encoder.safetensors) still loads
    old = tmp_path / "old"
    old.mkdir()
    Encoder.save_into(encoder, old)
    np.testing.assert_array_equal(load_encoder(old).encode(TEXTS), encoder.encode(TEXTS))


# -- letters in compatibility forms ---------------------------------------------------------------
@pytest.mark.parametrize("fancy, plain", [
    ("ｓｈａｒｅｓ ｆｅｌｌ", "shares fell"),           # full-width
    ("ˢᴴᴬᴿᴱˢ ᶠᴱᴸᴸ today", "SHARES FELL today"),       # modifier letters
    ("𝓼𝓱𝓪𝓻𝓮𝓼 fell", "shares fell"),                  # mathematical script
    ("ﬁnal score ²", "final score 2"),                  # a ligature and a superscript digit
])
def test_compatibility_letters_featurise_as_their_plain_form(fancy, plain) -> None:
    featurizer = HashingFeaturizer(buckets=1 << 12)
    for batch in ([fancy], ["a", fancy, "ｘ"], [fancy, "İstanbul"]):
        got = featurizer.transform(batch)
        want = featurizer.transform([plain if t == fancy else t for t in batch])
        for ids, starts, ids2, starts2 in zip(got.ids, got.starts, want.ids, want.starts, strict=True):
            np.testing.assert_array_equal(ids, ids2)
            np.testing.assert_array_equal(starts, starts2)


def test_punctuation_in_compatibility_form_is_left_alone() -> None:
    featurizer = HashingFeaturizer(buckets=1 << 12)
    dots, ellipsis = featurizer.transform(["wait..."]), featurizer.transform(["wait…"])
    assert not np.array_equal(dots.ids[0], ellipsis.ids[0])


def test_english_in_modifier_letters_is_not_an_unknown_script(rng: np.random.Generator) -> None:
    from simtools.student.featurizer import script_pages

    model = _model(rng)
    model.config["known_pages"] = script_pages(["plain english text only"])
    proba, known = model.predict_proba_known(["ˢᴵᴺᶜᴱ ᴱᵛᴱᴿᵞᵀᴴᴵᴺᴳ", "안녕하세요"])
    assert known.tolist() == [True, False]
    assert script_pages(["ˢᴵᴺᶜᴱ"]) == [0]  # training on them records Latin, not their page
