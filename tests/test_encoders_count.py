"""simtools.encoders.count (through make_encoder): count, tf-idf, hashing and char n-grams."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from folder_tools import live, reseal
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from simtools.encoders import ENCODER_NAMES, CountEncoder, load_encoder, make_encoder
from simtools.metrics import pairwise
from simtools.persistence import FormatError

NAMES = ["count", "tfidf", "hashing", "char"]
TEXTS = ["the cat sat on the mat", "a dog barked at the cat", "stocks fell on the market today",
         "the market rallied as stocks rose"]


@pytest.mark.parametrize("name", NAMES)
def test_make_encoder_gives_sparse_float32(name):
    assert name in ENCODER_NAMES
    encoder = make_encoder(name)
    assert encoder.fit(TEXTS) is encoder
    X = encoder.encode(TEXTS)
    assert sp.issparse(X) and X.format == "csr" and X.dtype == np.float32
    assert X.shape == (4, encoder.dim) and encoder.sparse
    assert (encoder.transform(TEXTS) != X).nnz == 0


def test_count_is_raw_word_counts():
    encoder = make_encoder("count").fit(TEXTS)
    row = encoder.encode(["the cat the CAT dog"]).toarray()[0]
    vocab = encoder.vocabulary
    assert row[vocab.index("the")] == 2 and row[vocab.index("cat")] == 2
    assert row[vocab.index("dog")] == 1 and row.sum() == 5
    assert encoder.dim == len(vocab) == len(set(vocab))


def test_tfidf_has_word_bigrams():
    vocab = make_encoder("tfidf").fit(TEXTS).vocabulary
    assert "the cat" in vocab and "cat" in vocab


def test_char_ngrams_within_words():
    vocab = make_encoder("char").fit(["cats"]).vocabulary
    assert {" c", "ca", "cat", " cat", "ats "} <= set(vocab)
    assert all(2 <= len(term) <= 4 for term in vocab)


def test_word_ngram_range_parameter():
    vocab = CountEncoder("count", ngram_range=(2, 3)).fit(["one two three"]).vocabulary
    assert sorted(vocab) == ["one two", "one two three", "two three"]


def test_hashing_needs_no_vocabulary_and_counts():
    encoder = make_encoder("hashing").fit(["anything"])
    assert encoder.dim == 2**20 and encoder.vocabulary == []
    X = encoder.encode(["bb aa bb", "never seen before"])
    assert X[0].sum() == 3 and X[1].sum() == 3
    assert (X.data > 0).all()  # alternate_sign is off: counts, not signed hashes


def test_unknown_words_give_a_zero_vector():
    assert make_encoder("count").fit(TEXTS).encode(["zzz qqq"]).nnz == 0


def test_korean_char_ngrams_find_similar_texts():
    texts = ["오늘 축구 경기에서 멋진 골을 넣었다",  # football: a great goal today
             "인공지능 모델을 데이터로 학습시켰다",  # AI: trained a model on data
             "테니스 선수가 라켓으로 공을 쳤다"]  # tennis: hit the ball with a racket
    queries = ["축구 경기의 골", "머신러닝 모델의 데이터 학습", "테니스 라켓"]
    encoder = make_encoder("char").fit(texts)
    assert any("축구" in term for term in encoder.vocabulary)
    similarity = pairwise(encoder.encode(queries), encoder.encode(texts))
    assert np.argmax(similarity, axis=1).tolist() == [0, 1, 2]


def test_pipeline_and_clone():
    texts = ["goal match football", "football league goal", "match goal striker",
             "model data learning", "neural model training", "data learning predictions"] * 2
    labels = ["sport"] * 3 + ["ml"] * 3
    labels = labels * 2
    pipe = Pipeline([("encode", make_encoder("tfidf")), ("classify", LogisticRegression())])
    pipe.fit(texts, labels)
    assert pipe.predict(["a goal in the football match", "training a model on data"]).tolist() == [
        "sport", "ml"]
    copy = clone(pipe)
    assert copy.get_params()["encode__kind"] == "tfidf"
    assert not hasattr(copy.named_steps["encode"], "vectorizer_")
    copy.fit(texts, labels)
    assert (copy.predict(texts) == pipe.predict(texts)).all()


def test_get_params_round_trip():
    encoder = CountEncoder("tfidf", analyzer="char", ngram_range=(1, 3), min_df=2)
    params = encoder.get_params()
    assert params["analyzer"] == "char" and params["ngram_range"] == (1, 3)
    assert CountEncoder(**params).get_params() == params


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_gives_identical_vectors(name, tmp_path):
    fitted = make_encoder(name).fit(TEXTS + ["테니스 선수"])
    path = fitted.save(tmp_path / name)
    loaded = load_encoder(path)
    assert type(loaded) is CountEncoder and loaded.dim == fitted.dim
    assert loaded.get_params() == fitted.get_params()
    queries = ["the cat and the market", "테니스", "nothing known here xyz"]
    a, b = fitted.encode(queries), loaded.encode(queries)
    assert a.dtype == b.dtype and (a != b).nnz == 0
    assert CountEncoder.load(path).vocabulary == fitted.vocabulary


def test_load_encoder_unknown_type(tmp_path):
    make_encoder("count").fit(TEXTS).save(tmp_path / "e")
    config = (live(tmp_path / "e") / "config.json").read_text().replace('"type": "count"', '"type": "magic"')
    (live(tmp_path / "e") / "config.json").write_text(config)
    reseal(tmp_path / "e")
    with pytest.raises(FormatError, match="encoder of unknown type 'magic'; known types: bm25, count"):
        load_encoder(tmp_path / "e")


def test_load_encoder_inconsistent_vocabulary(tmp_path):
    make_encoder("count").fit(TEXTS).save(tmp_path / "e")
    encoder = make_encoder("count").fit(TEXTS)
    config = (live(tmp_path / "e") / "config.json").read_text()
    config = config.replace(f'"dim": {encoder.dim}', '"dim": 99')
    (live(tmp_path / "e") / "config.json").write_text(config)
    reseal(tmp_path / "e")
    with pytest.raises(FormatError, match=r"inconsistent encoder config.*vocabulary has \d+ terms, config says 99"):
        load_encoder(tmp_path / "e")


def test_empty_vocabulary_error():
    with pytest.raises(ValueError, match=r"empty vocabulary.*analyzer='char_wb'"):
        make_encoder("count").fit(["a", "I", "!"])


def test_encode_before_fit():
    with pytest.raises(Exception, match="not fitted yet; call fit"):
        make_encoder("count").encode(["hello"])
    with pytest.raises(Exception, match="not fitted yet; call fit"):
        make_encoder("count").save("never-written")


def test_fit_rejects_blank_texts():
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        make_encoder("count").fit(["hello there", " "])


def test_unknown_encoder_name():
    with pytest.raises(ValueError, match="unknown encoder 'bert'; valid values are bm25, char, count"):
        make_encoder("bert")


def test_bad_parameters():
    with pytest.raises(ValueError, match=r"ngram_range must be \(min_n, max_n\)"):
        CountEncoder(ngram_range=(2, 1)).fit(TEXTS)
    with pytest.raises(ValueError, match="unknown analyzer 'letters'; valid values are 'word'"):
        CountEncoder(analyzer="letters").fit(TEXTS)
    with pytest.raises(ValueError, match="unknown encoder kind 'bm25'"):
        CountEncoder("bm25").fit(TEXTS)
    with pytest.raises(ValueError, match="max_chars must be a positive integer or None"):
        CountEncoder(max_chars=0).fit(TEXTS)


# -- the cap on characters per text ----------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_every_lexical_encoder_caps_the_characters_of_a_text(name):
    encoder = make_encoder(name)
    assert encoder.max_chars == 100_000
    head = " ".join(f"word{i}" for i in range(12_000))  # about 100,000 characters
    tail = " other words that come after the cap" * 2_000
    text = (head + " " + tail)[:250_000]
    encoder.fit([text, "other words"])
    cut = encoder.encode([text[:100_000]])
    assert (encoder.encode([text]) != cut).nnz == 0  # the tail past 100,000 is ignored


def test_max_chars_is_a_parameter_and_none_lifts_the_cap():
    encoder = CountEncoder("count", max_chars=10).fit(["alpha beta gamma", "delta"])
    assert encoder.vocabulary == ["alpha", "beta", "delta"]  # fit sees "alpha beta" only
    row = encoder.encode(["beta alpha gamma beta"]).toarray()[0]  # "beta alpha"
    assert row.tolist() == [1.0, 1.0, 0.0]
    whole = CountEncoder("count", max_chars=None).fit(["alpha beta gamma"])
    assert "gamma" in whole.vocabulary
    assert clone(encoder).get_params()["max_chars"] == 10


def test_max_chars_is_saved_and_old_folders_get_the_default(tmp_path):
    encoder = CountEncoder("tfidf", max_chars=5).fit(TEXTS)
    loaded = load_encoder(encoder.save(tmp_path / "e"))
    assert loaded.max_chars == 5
    assert (loaded.encode(TEXTS) != encoder.encode(TEXTS)).nnz == 0
    none = load_encoder(CountEncoder("count", max_chars=None).fit(TEXTS).save(tmp_path / "n"))
    assert none.max_chars is None
    # A folder written before the cap existed has no max_chars in its config.
    config_path = live(tmp_path / "e") / "config.json"
    config = json.loads(config_path.read_text())
    del config["max_chars"]
    config_path.write_text(json.dumps(config))
    reseal(tmp_path / "e")
    assert load_encoder(tmp_path / "e").max_chars == 100_000
