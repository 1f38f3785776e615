"""simtools.classify.knn: k-NN vote and nearest-document classifiers over an index."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from simtools.classify.knn import KNNClassifier, NearestDocumentClassifier, index_classifier
from simtools.index import Index

TEXTS = ["goal match football", "football league goal", "match goal striker",
         "model data learning", "neural model training", "data learning predictions"] * 3
LABELS = (["sport"] * 3 + ["ml"] * 3) * 3


@pytest.fixture
def labelled(vectors):
    """The conftest vectors labelled by a direction-based rule, and queries off the data."""
    rng = np.random.default_rng(1)
    labels = np.array([str(int(x[0] > 0) + 2 * int(x[1] > 0)) for x in vectors])
    queries = rng.normal(size=(40, 16)).astype(np.float32) * 3
    return vectors, labels, queries


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_knn_agrees_with_sklearn_cosine_brute(weights, labelled):
    X, y, Q = labelled
    ours = KNNClassifier(k=5, metric="cosine", weights=weights).fit(X, y)
    theirs = KNeighborsClassifier(n_neighbors=5, metric="cosine", algorithm="brute",
                                  weights=weights).fit(X, y)
    # no ties: the 5th and 6th neighbours of every query are clearly apart
    distances = np.sort(theirs.kneighbors(Q, 6)[0], axis=1)
    assert (np.diff(distances[:, 4:6], axis=1) > 1e-4).all()
    assert list(ours.classes_) == list(theirs.classes_)
    np.testing.assert_allclose(ours.predict_proba(Q), theirs.predict_proba(Q), rtol=1e-3, atol=1e-4)
    assert (ours.predict(Q) == theirs.predict(Q)).all()


@pytest.mark.parametrize("metric", ["euclidean", "inner_product", "normalized_euclidean"])
def test_knn_agrees_with_sklearn_on_other_metrics(metric, labelled):
    X, y, Q = labelled
    ours = KNNClassifier(k=7, metric=metric).fit(X, y)
    if metric == "normalized_euclidean":  # ranks as cosine does
        theirs = KNeighborsClassifier(7, metric="cosine", algorithm="brute").fit(X, y)
    elif metric == "euclidean":
        theirs = KNeighborsClassifier(7, algorithm="brute").fit(X, y)
    else:  # largest dot product = smallest negative dot
        theirs = KNeighborsClassifier(7, algorithm="brute", metric=lambda a, b: -a @ b).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(Q), theirs.predict_proba(Q), atol=1e-6)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("metric", ["cosine", "euclidean", "normalized_euclidean", "inner_product"])
def test_predict_proba_rows_sum_to_one(metric, weights, labelled):
    X, y, Q = labelled
    proba = KNNClassifier(k=10, metric=metric, weights=weights).fit(X, y).predict_proba(Q)
    assert proba.shape == (40, 4) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert (proba >= 0).all()


def test_knn_on_texts():
    clf = KNNClassifier("tfidf", k=3).fit(TEXTS, LABELS)
    assert clf.predict(["a football goal", "learning from data"]).tolist() == ["sport", "ml"]
    assert clf.predict(np.array(["a football goal"])).tolist() == ["sport"]


def test_distance_weights_favour_the_nearest():
    X = np.array([[0.0], [1.0], [1.1], [10.0]])
    clf = KNNClassifier(k=3, metric="euclidean", weights="distance").fit(X, ["a", "b", "b", "a"])
    assert clf.predict(np.array([[0.05]])).tolist() == ["a"]
    assert KNNClassifier(k=3, metric="euclidean").fit(X, ["a", "b", "b", "a"]).predict(
        np.array([[0.05]])).tolist() == ["b"]


def test_k_is_capped_at_the_index_size():
    clf = KNNClassifier(k=50).fit(np.eye(3), ["a", "b", "b"])
    np.testing.assert_allclose(clf.predict_proba(np.eye(3)[:1]), [[1 / 3, 2 / 3]], rtol=1e-6)


def test_clone_and_cross_val_score():
    clf = KNNClassifier("tfidf", k=3, weights="distance")
    copy = clone(clf)
    assert copy.get_params() == clf.get_params() and copy is not clf
    scores = cross_val_score(clf, np.array(TEXTS), LABELS, cv=3)
    assert scores.tolist() == [1.0, 1.0, 1.0]
    assert cross_val_score(NearestDocumentClassifier("count"), TEXTS, LABELS, cv=3).min() == 1.0


def test_knn_validation():
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        KNNClassifier().predict_proba(np.eye(2))
    clf = KNNClassifier(weights="inverse").fit(np.eye(2), ["a", "b"])
    with pytest.raises(ValueError, match="unknown weights 'inverse'; valid values are 'uniform', 'distance'"):
        clf.predict_proba(np.eye(2))
    with pytest.raises(ValueError, match="k must be at least 1"):
        KNNClassifier(k=0).fit(np.eye(2), ["a", "b"]).predict(np.eye(2))


def test_nearest_document_classifier(corpus, tweets):
    clf = NearestDocumentClassifier("count", metric="cosine").fit(list(corpus.values()), list(corpus))
    assert sorted(clf.classes_) == sorted(corpus)
    proba = clf.predict_proba(list(tweets.values()))
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert clf.predict(list(tweets.values())).tolist() == list(tweets)
    sharp = NearestDocumentClassifier("count", temperature=0.01).fit(list(corpus.values()), list(corpus))
    assert sharp.predict_proba(list(tweets.values())).max(axis=1).min() > proba.max(axis=1).min()


def test_nearest_document_under_euclidean_picks_the_shortest(corpus, tweets):
    clf = NearestDocumentClassifier("count", metric="euclidean").fit(list(corpus.values()), list(corpus))
    assert clf.predict([tweets["Association football"]]).tolist() == ["Tennis"]
    np.testing.assert_allclose(clf.predict_proba([tweets["Machine learning"]]).sum(), 1, rtol=1e-5)


def test_nearest_document_several_documents_per_class():
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    clf = NearestDocumentClassifier().fit(X, ["x", "x", "y"])
    proba = clf.predict_proba(np.array([[0.2, 1.0]]))
    assert clf.classes_.tolist() == ["x", "y"] and proba[0, 1] > 0.99


def test_nearest_document_temperature_must_be_positive():
    clf = NearestDocumentClassifier(temperature=0).fit(np.eye(2), ["a", "b"])
    with pytest.raises(ValueError, match="temperature must be positive, got 0"):
        clf.predict(np.eye(2))


# -- index_classifier -------------------------------------------------------------------------
def test_index_classifier_auto_mode(corpus, tweets):
    pages = Index("count")
    pages.add_texts(list(corpus.values()), titles=list(corpus))  # no labels: titles vote
    clf = index_classifier(pages)
    assert isinstance(clf, NearestDocumentClassifier)
    assert clf.predict(list(tweets.values())).tolist() == list(tweets)

    labelled = Index("tfidf")
    labelled.add_texts(TEXTS, labels=LABELS)
    clf = index_classifier(labelled, k=3, weights="distance")
    assert type(clf) is KNNClassifier and (clf.k, clf.weights) == (3, "distance")
    assert clf.predict(["goal in the football match"]).tolist() == ["sport"]


def test_index_classifier_explicit_modes(corpus):
    pages = Index("count")
    pages.add_texts(list(corpus.values()), titles=list(corpus))
    assert type(index_classifier(pages, mode="knn", k=1)) is KNNClassifier
    assert type(index_classifier(pages, mode="nearest")) is NearestDocumentClassifier
    with pytest.raises(ValueError, match="unknown mode 'best'; valid values are 'auto', 'knn', 'nearest'"):
        index_classifier(pages, mode="best")


def test_index_classifier_needs_labels_or_titles():
    index = Index()
    index.add_vectors(np.eye(2))
    with pytest.raises(ValueError, match="neither a label nor a title to vote with"):
        index_classifier(index)


def test_classifying_with_a_bm25_index_weights_the_texts_as_queries():
    texts = ["football goal match cup", "tennis racket net court", "bank shares profit market",
             "goal final football", "racket tennis serve", "shares bank rates"]
    labels = ["sport", "sport", "money", "sport", "sport", "money"]
    clf = KNNClassifier("bm25", k=1, metric="inner_product").fit(texts, labels)
    query = ["a late goal in the cup final"]
    scores, positions = clf._neighbours(query, 1)
    best = clf.index_.search(query, k=1)[0][0]
    assert clf.index_.ids[positions[0, 0]] == best.id
    assert scores[0, 0] == pytest.approx(best.score)  # the BM25 score, as search reports it
