"""simtools.compare: one query against candidates under every metric, side by side."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from simtools.compare import COMPARED, Comparison, compare_index, compare_texts
from simtools.encoders import make_encoder
from simtools.index import Index


def test_compare_texts_the_metrics_lesson(corpus, tweets):
    result = compare_texts(tweets["Association football"], list(corpus.values()))
    assert isinstance(result, Comparison)
    names = list(corpus)
    assert {m: names[i] for m, i in result.nearest.items()} == {
        "euclidean": "Tennis", "cosine": "Association football",
        "normalized_euclidean": "Association football"}
    assert names[int(np.argmin(result.lengths))] == "Tennis"


def test_compare_texts_scores_match_a_reference(corpus, tweets):
    encoder = make_encoder("count").fit([tweets["Tennis"], *corpus.values()])
    result = compare_texts(tweets["Tennis"], list(corpus.values()), encoder)
    q = encoder.encode([tweets["Tennis"]]).toarray().astype(np.float64)
    X = encoder.encode(list(corpus.values())).toarray().astype(np.float64)
    cos = 1 - cdist(q, X, "cosine")[0]
    unit = lambda A: A / np.linalg.norm(A, axis=1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(result.scores["euclidean"], cdist(q, X)[0], rtol=1e-6)
    np.testing.assert_allclose(result.scores["cosine"], cos, rtol=1e-6)
    np.testing.assert_allclose(result.scores["normalized_euclidean"],
                               1 - cdist(unit(q), unit(X))[0], atol=1e-6)
    np.testing.assert_allclose(result.lengths, np.linalg.norm(X, axis=1), rtol=1e-6)


def test_to_dict_schema():
    result = compare_texts("a goal in the match", ["the match had a late goal", "tennis racket"])
    out = result.to_dict()
    assert list(out) == ["query", "candidates", "nearest"]
    assert out["query"] == "a goal in the match"
    assert [list(c) for c in out["candidates"]] == [["text", *COMPARED]] * 2
    assert out["candidates"][1]["text"] == "tennis racket"
    assert all(isinstance(c[m], float) for c in out["candidates"] for m in COMPARED)
    assert out["nearest"] == {"euclidean": 0, "cosine": 0, "normalized_euclidean": 0}
    assert list(result.to_dict(key="title")["candidates"][0])[0] == "title"


def test_an_unfitted_encoder_object_is_fitted_on_all_texts():
    encoder = make_encoder("count")
    compare_texts("hello world", ["world peace"], encoder)
    assert set(encoder.vocabulary) == {"hello", "world", "peace"}


def test_query_without_known_tokens():
    encoder = make_encoder("count").fit(["football match"])
    with pytest.raises(ValueError, match="the query 'zzz' has no token the encoder knows"):
        compare_texts("zzz", ["football"], encoder)


def test_empty_query_and_candidates():
    with pytest.raises(ValueError, match=r"query\[0\] is empty"):
        compare_texts(" ", ["football"])
    with pytest.raises(ValueError, match="candidates is empty"):
        compare_texts("football", [])
    with pytest.raises(ValueError, match=r"candidates\[1\] is empty"):
        compare_texts("football", ["a match", ""])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_compare_index_uses_raw_vectors_whatever_the_metric(metric, corpus, tweets):
    index = Index("count", metric=metric)
    index.add_texts(list(corpus.values()), titles=list(corpus))
    result = compare_index(index, tweets["Association football"])
    assert result.names == list(corpus)
    expected = compare_texts(tweets["Association football"], list(corpus.values()), index.encoder)
    for m in COMPARED:
        np.testing.assert_allclose(result.scores[m], expected.scores[m], rtol=1e-5, atol=1e-6)
    assert result.nearest == expected.nearest


def test_compare_index_names_fall_back_to_ids():
    index = Index("count")
    index.add_texts(["football match", "tennis racket"], ids=["a", "b"], titles=["Football", None])
    assert compare_index(index, "football").names == ["Football", "b"]


def test_compare_index_needs_an_encoder():
    index = Index()
    index.add_vectors(np.eye(2))
    with pytest.raises(ValueError, match="this index has no encoder"):
        compare_index(index, "football")


def test_compare_index_names_are_text_whatever_the_titles():
    index = Index("count")
    index.add_texts(["football match", "tennis racket", "chess board"],
                    titles=[{"en": "Football"}, 42, ["a", "b"]])
    result = compare_index(index, "football")
    assert result.names == ['{"en": "Football"}', "42", '["a", "b"]']
    assert [c["title"] for c in result.to_dict(key="title")["candidates"]] == result.names


def test_errors_are_input_errors():
    from simtools.errors import InputError

    encoder = make_encoder("count").fit(["football match"])
    with pytest.raises(InputError, match="the query 'zzz' has no token the encoder knows"):
        compare_texts("zzz", ["football"], encoder)
    with pytest.raises(InputError, match=r"candidates\[0\] is empty"):
        compare_texts("football", [" "])
