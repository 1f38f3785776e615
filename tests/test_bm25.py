"""BM25: the sparse index's inner products against a brute-force BM25, bm25s, and bad input."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest

from simtools import Index, make_encoder
from simtools.encoders.base import load_encoder
from simtools.encoders.bm25 import BM25Encoder
from simtools.errors import InputError

DOCS = [
    "The cat sat on the mat with another cat",
    "Dogs and cats are pets; a dog chases a cat",
    "Tennis is played on grass, clay and hard courts",
    "Wimbledon is a tennis tournament played on grass in London",
    "The stock market fell as investors sold shares",
    "Shares of the company rose after the market opened",
    "A dog and a cat can be friends",
    "Football is played on grass too, with a ball",
]
QUERIES = ["cat and dog", "tennis on grass", "market shares", "the the cat", "grass"]


def tokens(text: str) -> list[str]:
    return re.findall(r"(?u)\b\w\w+\b", text.lower())


def brute_force(docs: list[str], query: str, k1: float, b: float) -> np.ndarray:
    """BM25 from its definition, one document and one query term at a time."""
    counted = [Counter(tokens(d)) for d in docs]
    lengths = [sum(c.values()) for c in counted]
    avgdl = sum(lengths) / len(docs)
    n = len(docs)
    scores = np.zeros(n)
    for term in tokens(query):  # a repeated query term counts once per occurrence
        df = sum(1 for c in counted if term in c)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, c in enumerate(counted):
            tf = c.get(term, 0)
            if tf == 0:
                continue
            scores[i] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[i] / avgdl))
    return scores


@pytest.mark.parametrize("k1, b", [(1.2, 0.75), (1.5, 0.75), (0.0, 0.5), (2.0, 0.0), (0.9, 1.0)])
def test_index_search_matches_brute_force(k1, b):
    index = Index(BM25Encoder(k1=k1, b=b))
    assert index.metric.value == "inner_product"
    index.add_texts(DOCS)
    for query, hits in zip(QUERIES, index.search(QUERIES, k=len(DOCS))):
        reference = brute_force(DOCS, query, k1, b)
        # every document that shares a term comes back, with its BM25 score, best first
        assert {int(h.id) for h in hits} == set(np.flatnonzero(reference > 0).tolist())
        for hit in hits:
            assert hit.score == pytest.approx(reference[int(hit.id)], rel=1e-5)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)


def test_documents_sharing_nothing_are_left_out():
    index = Index("bm25")
    index.add_texts(DOCS)
    hits = index.search(["wimbledon"], k=5)[0]
    assert [h.id for h in hits] == ["3"]  # one match, not padded with score-0 documents


def test_query_with_no_indexed_term_is_an_input_error():
    index = Index("bm25")
    index.add_texts(DOCS)
    with pytest.raises(InputError, match="no token this encoder knows"):
        index.search(["zebra xylophone"])


def test_queries_and_documents_are_weighted_differently():
    encoder = BM25Encoder().fit(DOCS)
    column = encoder.vocabulary_["cat"]
    query = encoder.encode_queries(["cat cat zebra"])
    assert query.nnz == 1 and query[0, column] == 2.0  # counts, not BM25 weights
    document = encoder.encode(["cat cat zebra"])
    assert document.nnz == 1 and 0 < document[0, column] != 2.0


def test_document_length_counts_words_outside_the_vocabulary():
    # fitted on the first documents (as a dump build does), a later document's new words
    # still make it longer, and so lower its term weights
    encoder = BM25Encoder().fit(DOCS[:4])
    short, long = encoder.encode(["cat tennis", "cat tennis " + "unseen " * 20])
    assert long.nnz == short.nnz == 2
    assert (long.data < short.data).all()


def test_stop_words():
    encoder = BM25Encoder(stop_words="english").fit(DOCS)
    assert "the" not in encoder.vocabulary_ and "cat" in encoder.vocabulary_
    custom = BM25Encoder(stop_words=["Cat"]).fit(DOCS)
    assert "cat" not in custom.vocabulary_


@pytest.mark.parametrize("params, match", [
    ({"k1": -0.1}, "k1 must be at least 0"),
    ({"k1": float("nan")}, "k1 must be at least 0"),
    ({"k1": "1.2"}, "k1 must be a number"),
    ({"b": 1.5}, "b must be between 0 and 1"),
    ({"b": -0.01}, "b must be between 0 and 1"),
    ({"b": True}, "b must be a number"),
    ({"max_chars": 0}, "max_chars must be a positive integer"),
    ({"stop_words": "french"}, "stop_words must be None, 'english'"),
])
def test_parameters_out_of_range(params, match):
    with pytest.raises(InputError, match=match):
        make_encoder("bm25", **params).fit(DOCS)


def test_no_usable_token():
    with pytest.raises(InputError, match="no text has any token BM25 can use"):
        BM25Encoder().fit(["a", "!", "x y"])


def test_the_named_encoder_is_the_measured_setting():
    from simtools.encoders import BM25_SETTINGS

    encoder = make_encoder("bm25")
    assert {name: getattr(encoder, name) for name in BM25_SETTINGS} == BM25_SETTINGS
    plain = BM25Encoder()  # the class keeps Lucene's defaults
    assert (plain.k1, plain.b, plain.stop_words) == (1.2, 0.75, None)


def test_bigrams_are_terms():
    encoder = BM25Encoder(ngram_range=(1, 2)).fit(["the cat sat", "a dog"])
    assert encoder.vocabulary == ["cat", "cat sat", "dog", "sat", "the", "the cat"]
    assert encoder.avgdl_ == 3.0  # "the cat sat": 3 unigrams + 2 bigrams; "dog": 1
    with pytest.raises(InputError, match="ngram_range must be"):
        BM25Encoder(ngram_range=(2, 1)).fit(DOCS)


def test_other_metrics_are_refused():
    with pytest.raises(InputError, match="cosine would renormalise them"):
        Index("bm25", metric="cosine")
    assert Index("bm25", metric="inner_product").metric.value == "inner_product"
    with pytest.raises(InputError, match="takes no parameters"):
        make_encoder("tfidf", k1=1.0)


def test_save_load_round_trip(tmp_path):
    index = Index(make_encoder("bm25", k1=1.4, b=0.6, stop_words="english"))
    index.add_texts(DOCS)
    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")
    assert isinstance(loaded.encoder, BM25Encoder)
    assert (loaded.encoder.k1, loaded.encoder.b) == (1.4, 0.6)
    before, after = index.search(QUERIES, k=4), loaded.search(QUERIES, k=4)
    assert [[(h.id, h.score) for h in row] for row in before] == \
        [[(h.id, h.score) for h in row] for row in after]

    encoder = BM25Encoder().fit(DOCS)
    encoder.save(tmp_path / "enc")
    again = load_encoder(tmp_path / "enc")
    assert (again.encode(DOCS) != encoder.encode(DOCS)).nnz == 0
    assert (again.encode_queries(QUERIES) != encoder.encode_queries(QUERIES)).nnz == 0


def test_damaged_state_is_a_format_error():
    encoder = BM25Encoder().fit(DOCS)
    config, arrays = encoder._get_state()
    config["dim"] = encoder.dim
    with pytest.raises(ValueError, match="document counts out of range"):
        BM25Encoder._from_state({**config, "n_documents": 0}, arrays)
    with pytest.raises(InputError, match="b must be between"):
        BM25Encoder._from_state({**config, "b": 3}, arrays)
    with pytest.raises(ValueError, match="config says 3"):
        BM25Encoder._from_state({**config, "dim": 3}, arrays)


def test_same_ranking_as_bm25s():
    bm25s = pytest.importorskip("bm25s")
    k1, b = 1.5, 0.75  # bm25s' defaults; its "lucene" scores leave out the constant (k1 + 1)
    retriever = bm25s.BM25(k1=k1, b=b)
    retriever.index(bm25s.tokenize(DOCS, stopwords=None, show_progress=False), show_progress=False)
    index = Index(make_encoder("bm25", k1=k1, b=b, stop_words=None))
    index.add_texts(DOCS)
    for query, hits in zip(QUERIES, index.search(QUERIES, k=len(DOCS))):
        theirs = retriever.get_scores(tokens(query))
        ours = np.zeros(len(DOCS))
        for hit in hits:
            ours[int(hit.id)] = hit.score
        np.testing.assert_allclose(ours, theirs * (k1 + 1), rtol=1e-5, atol=1e-6)


def test_cli_bm25_index_refuses_a_distorting_metric_and_names_bm25(tmp_path):
    import json

    from click.testing import CliRunner
    from simtools_cli.main import main

    folder = tmp_path / "docs"
    folder.mkdir()
    for i, text in enumerate(DOCS):
        (folder / f"doc{i}.txt").write_text(text, encoding="utf-8")
    runner = CliRunner()
    refused = runner.invoke(main, ["index", "files", str(folder), "--out", str(tmp_path / "x"),
                                   "--encoder", "bm25", "--metric", "cosine"])
    assert refused.exit_code == 2 and "would change the ranking of --encoder bm25" in refused.output
    built = runner.invoke(main, ["index", "files", str(folder), "--out", str(tmp_path / "i"),
                                 "--encoder", "bm25", "--json"])
    assert json.loads(built.stdout)["metric"] == "inner_product"
    found = runner.invoke(main, ["search", "wimbledon", "--index", str(tmp_path / "i"), "--json"])
    row = json.loads(found.stdout)
    assert row["metric"] == "bm25" and [n["title"] for n in row["neighbours"]] == ["doc3.txt"]
    text = runner.invoke(main, ["search", "wimbledon", "--index", str(tmp_path / "i")]).stdout
    assert text.splitlines()[1].endswith("doc3.txt") and len(text.splitlines()) == 2
