"""simtools.index (store, exact, build): every metric against a brute-force reference, ids and
metadata, validation, and save/load with every way a folder can be damaged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from folder_tools import live, reseal
from scipy.spatial.distance import cdist

import simtools.index.exact as exact
import simtools.index.exact_dense as exact_dense
import simtools.index.index_files as index_files
import simtools.index.topk as topk
from simtools.data import Document
from simtools.index import Index, Neighbour
from simtools.index.build import batched, build_index
from simtools.metrics import Metric
from simtools.persistence import FormatError

METRICS = [m.value for m in Metric]


def reference(Q: np.ndarray, X: np.ndarray, metric: str) -> tuple[np.ndarray, bool]:
    """Scores of every query against every row, float64, and whether higher is nearer."""
    Q, X = Q.astype(np.float64), X.astype(np.float64)
    if metric == "euclidean":
        return cdist(Q, X), False
    if metric == "inner_product":
        return Q @ X.T, True
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    if metric == "cosine":
        return Qn @ Xn.T, True
    return 1 - cdist(Qn, Xn), True  # normalized_euclidean


def check_against_reference(index: Index, Q, X, metric: str, k: int) -> None:
    Qd = Q.toarray() if sp.issparse(Q) else Q
    Xd = X.toarray() if sp.issparse(X) else X
    ref, higher = reference(Qd, Xd, metric)
    order = np.argsort(-ref if higher else ref, axis=1, kind="stable")[:, :k]
    expected = np.take_along_axis(ref, order, axis=1)
    scores, positions = index.search_vectors(Q, k)
    assert scores.shape == positions.shape == (Qd.shape[0], k)
    assert scores.dtype == np.float32 and positions.dtype == np.int64
    scale = 1.0 if metric != "euclidean" else float(np.abs(expected).max())
    np.testing.assert_allclose(scores, expected, atol=2e-5 * scale + 1e-5, rtol=1e-5)
    # The neighbours found score as the reference's best ones do (so ties may swap) ...
    np.testing.assert_allclose(np.take_along_axis(ref, positions, axis=1), expected,
                               atol=2e-5 * scale + 1e-5, rtol=1e-5)
    # ... and are the reference's own wherever a rank is not a near-tie with its neighbours.
    ranked = np.take_along_axis(ref, np.argsort(-ref if higher else ref, axis=1), axis=1)
    gap = np.abs(np.diff(ranked, axis=1))[:, :k + 1]
    clear = np.minimum(gap[:, :k], np.concatenate([gap[:, :1] * 0 + np.inf, gap[:, :k - 1]], 1)) > 1e-4
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(positions[clear], order[clear])


def sparse_data(rng, n=200, dim=500, density=0.05):
    X = sp.random(n, dim, density=density, format="csr", random_state=rng, dtype=np.float32)
    X.data[:] = rng.integers(1, 5, X.nnz)  # small counts: every row non-zero, no exact ties
    X = X + sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), np.arange(n) % dim)),
                          shape=(n, dim))
    X.data += rng.random(X.nnz).astype(np.float32) * 0.01
    return sp.csr_matrix(X, dtype=np.float32)


# -- every metric x (dense, sparse) against the reference -------------------------------------
@pytest.mark.parametrize("metric", METRICS)
def test_dense_search_matches_reference(metric, vectors, rng):
    index = Index(metric=metric)
    index.add_vectors(vectors)
    Q = vectors[:20] + rng.normal(size=(20, 16)).astype(np.float32) * 0.5
    check_against_reference(index, Q, vectors, metric, k=7)


@pytest.mark.parametrize("metric", METRICS)
def test_sparse_search_matches_reference(metric, rng):
    X = sparse_data(rng)
    index = Index(metric=metric)
    index.add_vectors(X)
    assert index.sparse
    Q = sparse_data(rng, n=15)
    check_against_reference(index, Q, X, metric, k=6)


def with_common_terms(rng, X, n_common=4, share=0.8):
    """X plus a few columns found in most rows, like a text's common words."""
    present = rng.random((X.shape[0], n_common)) < share
    common = np.where(present, rng.integers(1, 4, present.shape), 0).astype(np.float32)
    return sp.csr_matrix(sp.hstack([X, sp.csr_matrix(common)]), dtype=np.float32)


SPARSE_REGIMES = {
    # (DENSE_PRODUCT, FREQUENT_TERMS, FREQUENT_BYTES)
    "sparse product": (1e9, 0.08, 1 << 28),
    "dense block, frequent terms by BLAS": (0.0, 0.08, 1 << 28),
    "dense block, no frequent terms": (0.0, 2.0, 1 << 28),
    "dense block, every term by BLAS": (0.0, 0.0, 1 << 28),
    "dense block, budget for 2 columns": (0.0, 0.0, 4 * 200 * 2),
}


@pytest.mark.parametrize("regime", SPARSE_REGIMES)
@pytest.mark.parametrize("metric", METRICS)
def test_sparse_regimes_match_reference(regime, metric, rng, monkeypatch):
    dense_product, frequent_terms, frequent_bytes = SPARSE_REGIMES[regime]
    monkeypatch.setattr(exact, "DENSE_PRODUCT", dense_product)
    monkeypatch.setattr(exact, "FREQUENT_TERMS", frequent_terms)
    monkeypatch.setattr(exact, "FREQUENT_BYTES", frequent_bytes)
    X = with_common_terms(rng, sparse_data(rng))
    index = Index(metric=metric)
    index.add_vectors(X)
    Q = with_common_terms(rng, sparse_data(rng, n=15))
    check_against_reference(index, Q, X, metric, k=6)
    # Added and removed rows rebuild the split of frequent terms.
    index.remove(index.ids[:50])
    check_against_reference(index, Q, X[50:], metric, k=6)


def test_sparse_queries_with_duplicate_entries_are_summed(rng):
    X = with_common_terms(rng, sparse_data(rng))
    index = Index(metric="inner_product")
    index.add_vectors(X)
    Q = with_common_terms(rng, sparse_data(rng, n=5)).tocoo()
    # the same entries twice, uncompressed: a CSR matrix that is not in canonical format
    doubled = sp.csr_matrix((np.concatenate([Q.data, Q.data]),
                             (np.concatenate([Q.row, Q.row]), np.concatenate([Q.col, Q.col]))),
                            shape=Q.shape)
    doubled.has_canonical_format = False
    expected = index.search_vectors(2 * Q.tocsr(), 4)
    got = index.search_vectors(doubled, 4)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5)
    np.testing.assert_array_equal(got[1], expected[1])


@pytest.mark.parametrize("kind", ["dense", "sparse"])
@pytest.mark.parametrize("metric", METRICS)
def test_blocked_search_equals_unblocked(metric, kind, vectors, rng, monkeypatch):
    X = vectors if kind == "dense" else sparse_data(rng)
    n_queries = 1100 if kind == "dense" else 30  # dense: more than one batch of queries too
    Q = X[rng.integers(0, X.shape[0], n_queries)]
    Q = Q + rng.normal(size=Q.shape).astype(np.float32) * 0.1 if kind == "dense" else Q * 1.5
    index = Index(metric=metric)
    index.add_vectors(X)
    whole = index.search_vectors(Q, 5)
    monkeypatch.setattr(exact, "BLOCK_BYTES", 4 * 3 * 1024)  # chunks of a few rows
    monkeypatch.setattr(exact_dense, "SCORE_BLOCK_BYTES", 4 * 3 * 1024)
    monkeypatch.setattr(exact_dense, "GROUP", 4)
    blocked = Index(metric=metric)
    blocked.add_vectors(X)
    parts = blocked.search_vectors(Q, 5)
    np.testing.assert_allclose(parts[0], whole[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(parts[1], whole[1])


def test_search_over_many_rows_matches_reference(rng):
    X = rng.normal(size=(topk.SELECTION_BLOCK * 70, 8)).astype(np.float32)
    Q = rng.normal(size=(12, 8)).astype(np.float32)
    for metric in METRICS:
        index = Index(metric=metric)
        index.add_vectors(X)
        check_against_reference(index, Q, X, metric, k=10)


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_euclidean_scores_of_near_duplicates_are_accurate(kind, rng):
    # float32 ||q||^2 - 2 q.x + ||x||^2 cancels for near neighbours of large norm
    X = sp.random(50, 40, density=0.3, format="csr", random_state=rng, dtype=np.float32) * 300
    X = X + sp.eye(50, 40, format="csr", dtype=np.float32)
    Q = X[:5].copy()
    Q.data += np.float32(0.01)
    X, Q = (X, Q) if kind == "sparse" else (X.toarray(), Q.toarray())
    index = Index(metric="euclidean")
    index.add_vectors(X)
    scores, positions = index.search_vectors(Q, 2)
    assert positions[:, 0].tolist() == [0, 1, 2, 3, 4]
    dense = (lambda A: A.toarray() if sp.issparse(A) else A)  # noqa: E731
    expected = cdist(dense(Q).astype(np.float64), dense(X[:5]).astype(np.float64)).diagonal()
    assert expected.max() < 0.1
    np.testing.assert_allclose(scores[:, 0], expected, rtol=1e-3)


# -- texts, ids, labels, titles and metadata --------------------------------------------------
def test_add_texts_and_search_returns_neighbours(corpus):
    index = Index("tfidf")
    ids = index.add_texts(list(corpus.values()), titles=list(corpus), labels=["ml", "ml", "sport", "sport"],
                          metadata=[{"n": i} for i in range(4)])
    assert ids == ["0", "1", "2", "3"] and len(index) == 4
    [result] = index.search(["tennis racket and a ball over the net"], k=2)
    best = result[0]
    assert isinstance(best, Neighbour)
    assert (best.id, best.title, best.label, best.metadata) == ("3", "Tennis", "sport", {"n": 3})
    assert result[0].score >= result[1].score
    assert best.to_dict() == {"id": "3", "title": "Tennis", "label": "sport", "score": best.score}


def test_ids_given_and_generated_and_removed(vectors):
    index = Index(metric="euclidean")
    assert index.add_vectors(vectors[:3], ids=["a", "b", "c"]) == ["a", "b", "c"]
    assert index.add_vectors(vectors[3:5]) == ["0", "1"]
    assert index.remove(["b", "0"]) == 2
    assert index.ids == ["a", "c", "1"]
    scores, positions = index.search_vectors(vectors[[0, 2, 4]], 1)
    assert positions[:, 0].tolist() == [0, 1, 2]
    np.testing.assert_allclose(scores[:, 0], 0, atol=1e-3)
    assert index.add_vectors(vectors[5:6]) == ["2"]
    np.testing.assert_allclose(index.stored_vectors(), vectors[[0, 2, 4, 5]])


def test_remove_keeps_columns_aligned(vectors):
    index = Index()
    index.add_vectors(vectors[:4], labels=list("wxyz"), titles=list("WXYZ"),
                      metadata=[{"i": i} for i in range(4)])
    index.remove(["1", "2"])
    assert (index.ids, index.labels, index.titles) == (["0", "3"], ["w", "z"], ["W", "Z"])
    assert index.metadata == [{"i": 0}, {"i": 3}]
    assert index.search(vectors[3:4], k=1)[0][0].label == "z"
    assert index.remove([]) == 0


def test_remove_unknown_id():
    index = Index()
    index.add_vectors(np.eye(3))
    with pytest.raises(KeyError, match=r"unknown id\(s\) \['9'\]; nothing was removed"):
        index.remove(["0", "9"])
    assert len(index) == 3


def test_remove_takes_a_string_as_one_id():
    from simtools.errors import UnknownIdError

    index = Index()
    index.add_vectors(np.eye(3), ids=["1", "2", "12"])
    assert index.remove("12") == 1
    assert index.ids == ["1", "2"]
    with pytest.raises(UnknownIdError, match=r"^unknown id\(s\) \['21'\]; nothing was removed"):
        index.remove("21")
    assert index.ids == ["1", "2"]


def test_duplicate_ids_within_a_batch():
    with pytest.raises(ValueError, match="id 'a' is already in the index"):
        Index().add_vectors(np.eye(3), ids=["a", "b", "a"])


def test_duplicate_ids_across_batches():
    index = Index()
    index.add_vectors(np.eye(3), ids=["a", "b", "c"])
    with pytest.raises(ValueError, match="id 'c' is already in the index"):
        index.add_vectors(np.eye(3), ids=["d", "c", "e"])
    assert len(index) == 3


def test_wrong_number_of_ids():
    with pytest.raises(ValueError, match="got 3 vectors but 2 ids"):
        Index().add_vectors(np.eye(3), ids=["a", "b"])


def test_wrong_number_of_labels():
    with pytest.raises(ValueError, match="got 3 vectors but 1 labels; give one per vector"):
        Index().add_vectors(np.eye(3), labels=["x"])


def test_labels_are_strings():
    index = Index()
    index.add_vectors(np.eye(2), labels=[1, None])
    assert index.labels == ["1", None]


# -- validation -------------------------------------------------------------------------------
def test_dimension_mismatch(vectors):
    index = Index()
    index.add_vectors(vectors)
    with pytest.raises(ValueError, match="vectors have dimension 8, but 16 was expected"):
        index.search_vectors(vectors[:, :8], 3)
    with pytest.raises(ValueError, match="vectors have dimension 8, but 16 was expected"):
        index.add_vectors(vectors[:, :8])


def test_k_larger_than_the_index(vectors):
    index = Index()
    index.add_vectors(vectors[:5])
    with pytest.raises(ValueError, match="k=6 is larger than the 5 items in the index; use k <= 5"):
        index.search(vectors[:1], k=6)
    with pytest.raises(ValueError, match="k must be at least 1"):
        index.search(vectors[:1], k=0)


def test_unknown_metric_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown metric 'manhattan'; valid values are 'cosine', "
                                         "'euclidean', 'normalized_euclidean', 'inner_product'"):
        Index(metric="manhattan")


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'annoy'; valid values are 'exact'"):
        Index(backend="annoy")


def test_metric_spellings():
    assert Index(metric="Normalized-Euclidean").metric is Metric.NORMALIZED_EUCLIDEAN
    assert Index(metric=Metric.EUCLIDEAN).metric is Metric.EUCLIDEAN


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_vectors(bad, vectors):
    X = vectors[:4].copy()
    X[2, 3] = bad
    index = Index()
    with pytest.raises(ValueError, match=r"contain NaN or infinity in 1 row\(s\)"):
        index.add_vectors(X)
    index.add_vectors(vectors)
    with pytest.raises(ValueError, match="contain NaN or infinity"):
        index.search_vectors(X, 1)


def test_sparse_nan_vectors():
    X = sp.csr_matrix(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="contain NaN or infinity"):
        Index().add_vectors(X)


def test_mixing_sparse_and_dense():
    index = Index()
    index.add_vectors(np.eye(3))
    with pytest.raises(ValueError, match="cannot mix sparse and dense vectors"):
        index.add_vectors(sp.csr_matrix(np.eye(3)))


@pytest.mark.parametrize("metric", ["cosine", "normalized_euclidean"])
def test_zero_vectors_under_cosine(metric):
    index = Index(metric=metric)
    with pytest.raises(ValueError, match=f"a zero vector has no direction, so {metric} is undefined"):
        index.add_vectors(np.array([[1.0, 0.0], [0.0, 0.0]]))
    assert len(index) == 0
    index.add_vectors(np.eye(2))
    with pytest.raises(ValueError, match="a zero vector has no direction"):
        index.search_vectors(np.zeros((1, 2)), 1)


def test_zero_vectors_are_fine_under_euclidean():
    index = Index(metric="euclidean")
    index.add_vectors(np.array([[0.0, 0.0], [3.0, 4.0]]))
    scores, positions = index.search_vectors(np.zeros((1, 2)), 2)
    assert positions.tolist() == [[0, 1]] and np.allclose(scores, [[0, 5]])


def test_empty_text(corpus):
    index = Index("count")
    index.add_texts(list(corpus.values()))
    with pytest.raises(ValueError, match=r"queries\[0\] is empty or whitespace only"):
        index.search([""])
    with pytest.raises(ValueError, match=r"documents\[1\] is empty or whitespace only"):
        index.add_texts(["fine text", "   "])


def test_text_that_tokenises_to_nothing(corpus):
    index = Index("count")
    index.add_texts(list(corpus.values()))
    with pytest.raises(ValueError, match=r"1 query\(s\) have no token this encoder knows, e.g. '\?\? !!'"):
        index.search(["football", "?? !!"])


def test_search_on_an_empty_index():
    with pytest.raises(ValueError, match="the index is empty; add documents before searching"):
        Index().search_vectors(np.eye(2), 1)
    with pytest.raises(ValueError, match="the index is empty; add documents before saving"):
        Index().save("never-written")


def test_a_bare_string_query(corpus):
    index = Index("count")
    index.add_texts(list(corpus.values()))
    with pytest.raises(TypeError, match="wrap a single query in a list"):
        index.search("football")


def test_texts_on_a_vectors_only_index():
    index = Index()
    index.add_vectors(np.eye(2))
    with pytest.raises(ValueError, match="this index was built from vectors, not texts"):
        index.search(["hello"])


# -- the metrics lesson -----------------------------------------------------------------------
def test_cosine_versus_euclidean_on_raw_counts(corpus, tweets):
    titles, texts = list(corpus), list(corpus.values())
    nearest = {}
    for metric in METRICS[:3]:
        index = Index("count", metric=metric)
        index.add_texts(texts, titles=titles)
        nearest[metric] = index.search([tweets["Association football"]], k=1)[0][0].title
    assert nearest == {"cosine": "Association football", "euclidean": "Tennis",
                       "normalized_euclidean": "Association football"}
    shortest = min(corpus, key=lambda title: len(corpus[title]))
    assert shortest == "Tennis"


def test_cosine_puts_every_tweet_with_its_topic(corpus, tweets):
    index = Index("count", metric="cosine")
    index.add_texts(list(corpus.values()), titles=list(corpus))
    results = index.search(list(tweets.values()), k=1)
    assert [r[0].title for r in results] == list(tweets)


# -- stored vectors and other metrics ---------------------------------------------------------
@pytest.mark.parametrize("metric", METRICS)
def test_stored_vectors_raw_recovers_the_originals(metric, vectors, rng):
    dense = Index(metric=metric)
    dense.add_vectors(vectors)
    np.testing.assert_allclose(dense.stored_vectors(raw=True), vectors, rtol=1e-5, atol=1e-5)
    X = sparse_data(rng, n=30, dim=40)
    sparse = Index(metric=metric)
    sparse.add_vectors(X)
    raw = sparse.stored_vectors(raw=True)
    assert sp.issparse(raw)
    np.testing.assert_allclose(raw.toarray(), X.toarray(), rtol=1e-5, atol=1e-6)


def test_stored_vectors_are_normalised_for_cosine(vectors):
    index = Index(metric="cosine")
    index.add_vectors(vectors)
    np.testing.assert_allclose(np.linalg.norm(index.stored_vectors(), axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("target", METRICS)
def test_with_metric_equals_a_fresh_index(target, corpus, tweets):
    index = Index("count", metric="cosine")
    index.add_texts(list(corpus.values()), titles=list(corpus), labels=list("abcd"),
                    metadata=[{"i": i} for i in range(4)])
    other = index.with_metric(target)
    assert other.metric.value == target
    assert (other.ids, other.titles, other.labels, other.metadata) == (
        index.ids, index.titles, index.labels, index.metadata)
    fresh = Index(index.encoder, metric=target)
    fresh.add_texts(list(corpus.values()))
    queries = index.encoder.encode(list(tweets.values()))
    got, want = other.search_vectors(queries, 4), fresh.search_vectors(queries, 4)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[1], want[1])
    assert index.with_metric("cosine") is index
    assert other.add_texts(["another football text"]) == ["4"]


# -- save and load ----------------------------------------------------------------------------
def build_text_index(corpus, metric="cosine", encoder="tfidf"):
    index = Index(encoder, metric=metric)
    index.add_texts(list(corpus.values()), titles=list(corpus), labels=["ml", "ml", None, "sport"],
                    metadata=[{"rank": i, "note": "é"} for i in range(4)])
    return index


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("metric", METRICS)
def test_dense_save_load_round_trip(metric, mmap, vectors, tmp_path):
    index = Index(metric=metric)
    index.add_vectors(vectors, ids=[f"v{i}" for i in range(300)], labels=[str(i % 6) for i in range(300)])
    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx", mmap=mmap)
    assert loaded.metric.value == metric and len(loaded) == 300 and loaded.dim == 16
    assert loaded.ids == index.ids and loaded.labels == index.labels and loaded.encoder is None
    if mmap:
        assert isinstance(loaded.stored_vectors(), np.memmap)
    for a, b in zip(index.search_vectors(vectors[:10], 5), loaded.search_vectors(vectors[:10], 5),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loaded.stored_vectors(raw=True), vectors, rtol=1e-5, atol=1e-5)
    loaded.add_vectors(vectors[:2])  # a memory-mapped index still grows
    assert loaded.ids[-2:] == ["0", "1"] and len(loaded) == 302


@pytest.mark.parametrize("metric", METRICS)
def test_sparse_save_load_round_trip(metric, rng, tmp_path):
    X = sparse_data(rng, n=60, dim=80)
    index = Index(metric=metric)
    index.add_vectors(X, titles=[f"t{i}" for i in range(60)])
    index.remove(["3", "10"])
    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")
    assert loaded.sparse and loaded.ids == index.ids and loaded.titles == index.titles
    for a, b in zip(index.search_vectors(X[:7], 4), loaded.search_vectors(X[:7], 4), strict=True):
        np.testing.assert_array_equal(a, b)
    keep = [i for i in range(60) if i not in (3, 10)]
    np.testing.assert_allclose(loaded.stored_vectors(raw=True).toarray(), X[keep].toarray(),
                               rtol=1e-5, atol=1e-6)
    assert loaded.add_vectors(X[:1]) == ["60"]


@pytest.mark.parametrize("encoder", ["count", "tfidf", "hashing", "char"])
def test_text_index_save_load_round_trip(encoder, corpus, tweets, tmp_path):
    index = build_text_index(corpus, encoder=encoder)
    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")
    assert loaded.sparse and loaded.encoder is not None
    assert (loaded.titles, loaded.labels, loaded.metadata) == (index.titles, index.labels, index.metadata)
    queries = list(tweets.values())
    a, b = index.search(queries, k=4), loaded.search(queries, k=4)
    assert [[n.id for n in row] for row in a] == [[n.id for n in row] for row in b]
    for row_a, row_b in zip(a, b):  # rows may be short: unrelated documents are left out
        np.testing.assert_allclose([n.score for n in row_a], [n.score for n in row_b], rtol=1e-6)


def test_save_replaces_an_existing_index(corpus, tmp_path):
    build_text_index(corpus).save(tmp_path / "idx")
    small = Index()
    small.add_vectors(np.eye(3))
    small.save(tmp_path / "idx")
    assert len(Index.load(tmp_path / "idx")) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_missing_folder(tmp_path):
    with pytest.raises(FormatError, match="does not exist; check the path"):
        Index.load(tmp_path / "nope")


@pytest.fixture
def saved(corpus, tmp_path):
    path = tmp_path / "idx"
    build_text_index(corpus, metric="euclidean").save(path)
    return path


@pytest.fixture
def saved_dense(vectors, tmp_path):
    index = Index(metric="cosine")
    index.add_vectors(vectors)
    return index.save(tmp_path / "dense")


def test_corrupted_config(saved):
    (live(saved) / "config.json").write_text('{"kind": "index", "format_')
    reseal(saved)
    with pytest.raises(FormatError, match="config.json is corrupted"):
        Index.load(saved)


def test_config_missing_a_key(saved):
    config = json.loads((live(saved) / "config.json").read_text())
    del config["backend"]
    (live(saved) / "config.json").write_text(json.dumps(config))
    reseal(saved)
    with pytest.raises(FormatError, match="config.json is inconsistent"):
        Index.load(saved)


def test_wrong_format_version(saved):
    config = json.loads((live(saved) / "config.json").read_text())
    config["format_version"] = 99
    (live(saved) / "config.json").write_text(json.dumps(config))
    reseal(saved)
    with pytest.raises(FormatError, match=r"format version 99; this simtools reads \[1\]"):
        Index.load(saved)


def test_not_an_index(saved):
    with pytest.raises(FormatError, match="holds a simtools 'encoder', not a 'index'"):
        Index.load(live(saved) / "encoder")


@pytest.mark.parametrize("mmap", [True, False])
def test_truncated_dense_vectors(saved_dense, mmap):
    path = live(saved_dense) / "vectors.npy"
    path.write_bytes(path.read_bytes()[:-64])
    reseal(saved_dense)
    with pytest.raises(FormatError, match="vectors.npy is corrupted or truncated"):
        Index.load(saved_dense, mmap=mmap)


def test_missing_dense_vectors(saved_dense):
    (live(saved_dense) / "vectors.npy").unlink()
    reseal(saved_dense)
    with pytest.raises(FormatError, match="vectors.npy is missing"):
        Index.load(saved_dense)


def test_dense_vectors_of_the_wrong_shape(saved_dense):
    np.save(live(saved_dense) / "vectors.npy", np.zeros((300, 8), np.float32))
    reseal(saved_dense)
    with pytest.raises(FormatError, match=r"holds float32 \(300, 8\), expected float32 \(n, 16\)"):
        Index.load(saved_dense)


def test_truncated_sparse_vectors(saved):
    path = live(saved) / "vectors.safetensors"
    path.write_bytes(path.read_bytes()[:-40])
    reseal(saved)
    with pytest.raises(FormatError, match="vectors.safetensors is corrupted or truncated"):
        Index.load(saved)


def test_documents_with_fewer_lines(saved):
    path = live(saved) / "documents.jsonl"
    path.write_text("".join(path.read_text(encoding="utf-8").splitlines(True)[:-1]), encoding="utf-8")
    reseal(saved)
    with pytest.raises(FormatError, match="config says 4 documents, documents.jsonl has 3"):
        Index.load(saved)


def test_documents_corrupted(saved):
    (live(saved) / "documents.jsonl").write_text('{"id": "0"}\n{"id": \n')
    reseal(saved)
    with pytest.raises(FormatError, match="documents.jsonl near line 2 is corrupted"):
        Index.load(saved)


def test_documents_missing(saved):
    (live(saved) / "documents.jsonl").unlink()
    reseal(saved)
    with pytest.raises(FormatError, match="documents.jsonl is missing"):
        Index.load(saved)


def test_norms_missing(saved):
    (live(saved) / "norms.npy").unlink()
    reseal(saved)
    with pytest.raises(FormatError, match="norms.npy is missing"):
        Index.load(saved)


def test_encoder_missing(saved):
    (live(saved) / "encoder" / "encoder.safetensors").unlink()
    reseal(saved)
    with pytest.raises(FormatError, match="encoder.safetensors is missing"):
        Index.load(saved)


def test_interrupted_save_leaves_the_previous_index_loadable(saved, monkeypatch, vectors):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    other = Index(metric="cosine")
    other.add_vectors(vectors)
    monkeypatch.setattr(index_files, "write_json", broken)  # fails after the vectors were written
    with pytest.raises(OSError, match="disk full"):
        other.save(saved)
    monkeypatch.undo()
    loaded = Index.load(saved)
    assert len(loaded) == 4 and loaded.metric is Metric.EUCLIDEAN
    assert sorted(p.name for p in saved.parent.iterdir()) == ["idx"]


# -- build_index ------------------------------------------------------------------------------
def test_build_index_in_batches(corpus):
    docs = [Document(text, title, "x" if i % 2 else None, f"src{i}", {"extra": i})
            for i, (title, text) in enumerate(corpus.items())]
    seen = []
    index = build_index(iter(docs), encoder="count", metric="euclidean", batch_size=3,
                        on_batch=seen.append)
    assert seen == [3, 1] and len(index) == 4 and index.metric is Metric.EUCLIDEAN
    assert index.titles == list(corpus) and index.labels == [None, "x", None, "x"]
    assert index.metadata[1] == {"source": "src1", "extra": 1}
    # the encoder was fitted on every document, not on the first batch only
    assert "tennis" in index.encoder.vocabulary


def test_build_index_streams_with_a_fitted_encoder(corpus):
    from simtools.encoders import make_encoder

    encoder = make_encoder("hashing").fit(["x y"])
    docs = (Document(text, title) for title, text in corpus.items())
    assert len(build_index(docs, encoder=encoder, batch_size=2)) == 4


def test_build_index_without_documents():
    with pytest.raises(ValueError, match="no documents to index"):
        build_index([], encoder="count")


def test_batched():
    assert list(batched(range(5), 2)) == [[0, 1], [2, 3], [4]]
    assert list(batched([], 3)) == []


def test_query_texts_as_an_array_and_no_queries(corpus):
    index = Index("count")
    index.add_texts(list(corpus.values()), titles=list(corpus))
    assert index.search(np.array(["a tennis racket"]), k=1)[0][0].title == "Tennis"
    assert index.search(("a tennis racket",), k=1)[0][0].title == "Tennis"
    with pytest.raises(ValueError, match="queries is empty; give at least one text"):
        index.search([])


def test_release_buffers_is_safe_on_every_backend(vectors):
    # Exact dense search keeps no buffer between searches any more (tests/test_exact_dense.py
    # runs it from several threads); release_buffers() stays, and does nothing harmful.
    index = Index(metric="cosine")
    index.add_vectors(vectors)
    before = index.search_vectors(vectors[:3], 3)
    index.release_buffers()
    np.testing.assert_array_equal(index.search_vectors(vectors[:3], 3)[1], before[1])


def test_dense_queries_on_a_sparse_index_and_back(corpus):
    sparse = build_text_index(corpus, metric="euclidean")
    Q = sparse.encoder.encode(["tennis racket"])
    expected = sparse.search_vectors(Q, k=2)
    for queries in (Q.toarray(), sp.csc_matrix(Q)):
        np.testing.assert_array_equal(sparse.search_vectors(queries, k=2)[1], expected[1])
    dense = Index(metric="cosine")
    dense.add_vectors(Q.toarray().repeat(3, axis=0) + np.arange(3)[:, None])
    assert dense.search_vectors(Q, k=1)[1].shape == (1, 1)


def test_a_config_without_has_encoder_is_a_format_error(saved):
    config_path = live(saved) / "config.json"
    config = json.loads(config_path.read_text())
    del config["has_encoder"]
    config_path.write_text(json.dumps(config))
    reseal(saved)
    with pytest.raises(FormatError, match="config.json is inconsistent"):
        Index.load(saved)


def test_index_builder_fits_on_the_first_n_keeps_ids_and_checkpoints(tmp_path):
    from simtools.folders import FolderWriter
    from simtools.index.builder import IndexBuilder

    docs = [Document(f"word{i} shared text", f"t{i}", id=str(100 + i)) for i in range(10)]
    docs.insert(3, Document("", "blank", id="999"))
    skipped = []
    with FolderWriter(tmp_path / "idx", kind="index") as writer:
        index = Index("count")
        builder = IndexBuilder(index, fit_first=4, batch_size=2, writer=writer,
                               checkpoint_every=4, on_skip=skipped.append,
                               extra_files=lambda f: (f / "note.json").write_text("{}"))
        builder.extend(docs).finish()
        builder.checkpoint()
    assert [d.title for d in skipped] == ["blank"] and builder.seen == 11
    assert index.ids == [str(100 + i) for i in range(10)]
    # fitted on the first 4 documents only: later words are unknown to the vocabulary
    assert "word2" in index.encoder.vocabulary and "word9" not in index.encoder.vocabulary
    assert builder.checkpoints >= 2 and len(Index.load(tmp_path / "idx")) == 10
    assert (live(tmp_path / "idx") / "note.json").is_file()


def test_index_builder_refuses_mixed_ids():
    from simtools.index.builder import IndexBuilder

    builder = IndexBuilder(Index("hashing"), batch_size=2)
    with pytest.raises(ValueError, match="some documents have ids and some do not"):
        builder.extend([Document("alpha beta", "x", id="1"),
                        Document("gamma delta", "y")]).finish()
