"""Classification by neighbours over a metric-aware index (scikit-learn compatible).

- :class:`KNNClassifier`: the labels of the ``k`` nearest documents vote, by majority or
  weighted by nearness.
- :class:`NearestDocumentClassifier`: every class is one or more reference documents (say,
  Wikipedia pages); a text takes the label of its nearest one. Probabilities are a softmax over
  each class's best score.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .._math import softmax
from .._validation import check_choice, check_k, is_sparse
from ..errors import InputError
from ..index.build import encode_known
from ..index.store import Index

__all__ = ["KNNClassifier", "NearestDocumentClassifier", "Weights", "index_classifier"]


class Weights(str, Enum):
    UNIFORM = "uniform"  # one vote per neighbour
    DISTANCE = "distance"  # votes weighted by 1 / distance


class _IndexClassifier(ClassifierMixin, BaseEstimator):
    """Shared fit/predict plumbing: ``fit`` builds an index; predictions read neighbours."""

    def __init__(self, encoder: Any = None, *, metric: str = "cosine", backend: str = "exact") -> None:
        self.encoder = encoder
        self.metric = metric
        self.backend = backend

    def fit(self, X: Any, y: Any) -> _IndexClassifier:
        """Index ``X`` (texts when there is an encoder, else vectors) with labels ``y``."""
        labels = [str(label) for label in y]
        index = Index(self.encoder, metric=self.metric, backend=self.backend)
        if self.encoder is not None:
            index.add_texts(list(X), labels=labels)
        else:
            index.add_vectors(X, labels=labels)
        return self._set_index(index)

    @classmethod
    def from_index(cls, index: Index, **params: Any) -> Any:
        """A classifier over an existing index; a document without a label votes with its title."""
        clf = cls(index.encoder, metric=index.metric.value, **params)
        return clf._set_index(index)

    def _set_index(self, index: Index) -> Any:
        voters = [lab if lab is not None else title for lab, title in zip(index.labels, index.titles)]
        labels = [label for label in voters if label is not None]
        if len(labels) != len(voters):
            raise InputError("some indexed documents have neither a label nor a title to vote with; "
                             "index them with labels (a class-subfolder layout or a 'label' column)")
        self.index_ = index
        self.classes_ = np.array(sorted(set(labels)), dtype=object)
        lookup = {label: i for i, label in enumerate(self.classes_)}
        self.doc_class_ = np.array([lookup[label] for label in labels], dtype=np.int64)
        return self

    def _neighbours(self, X: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "index_", msg="This %(name)s is not fitted yet; call fit(X, y) first.")
        index = self.index_
        # Texts may come as a list, a numpy array or a pandas Series (sklearn's model selection
        # passes whatever the user gave fit); numeric or sparse input is taken as vectors.
        is_text = isinstance(X, str) or (not is_sparse(X) and np.asarray(X).dtype.kind in "OUS")
        # Texts to classify are queries (BM25 weights queries unlike documents).
        vectors = (index.encode(X if isinstance(X, str) else list(X), what="query") if is_text
                   else X)
        return index.search_vectors(vectors, k)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of every input."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def predict_proba_known(self, texts: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, known)`` for texts, every one answered.

        ``known`` is bool ``(n,)``: False for a text the index's encoder cannot place (blank,
        or no token it knows), whose probability row is all zeros; the others are classified
        as by :meth:`predict_proba`.
        """
        check_is_fitted(self, "index_", msg="This %(name)s is not fitted yet; call fit(X, y) first.")
        vectors, known = encode_known(self.index_, texts, what="query")
        proba = np.zeros((len(known), len(self.classes_)), dtype=np.float32)
        if vectors is not None:
            proba[known] = self.predict_proba(vectors)
        return proba, known


class KNNClassifier(_IndexClassifier):
    """k-nearest-neighbour vote over an index.

    Parameters
    ----------
    encoder : texts -> vectors (an Encoder or a name such as "tfidf"); ``None`` to fit on vectors.
    k : neighbours that vote (capped at the number of indexed documents).
    metric : "cosine" (default), "euclidean", "normalized_euclidean" or "inner_product".
    weights : "uniform" (majority) or "distance" (each vote weighted by 1 / distance).
    """

    def __init__(self, encoder: Any = None, *, k: int = 10, metric: str = "cosine",
                 weights: str = "uniform", backend: str = "exact") -> None:
        super().__init__(encoder, metric=metric, backend=backend)
        self.k = k
        self.weights = weights

    def predict_proba(self, X: Any) -> np.ndarray:
        """Vote shares, ``(n, n_classes)`` float32, columns in the order of ``classes_``."""
        check_is_fitted(self, "index_", msg="This %(name)s is not fitted yet; call fit(X, y) first.")
        k = min(check_k(self.k), len(self.index_))
        weights = check_choice(self.weights, Weights, name="weights")
        scores, positions = self._neighbours(X, k)
        if weights is Weights.UNIFORM:
            votes = np.ones_like(scores)
        else:
            votes = 1.0 / (self.index_.metric.distances(scores) + 1e-6)
        proba = np.zeros((len(positions), len(self.classes_)), dtype=np.float64)
        rows = np.repeat(np.arange(len(positions)), positions.shape[1])
        np.add.at(proba, (rows, self.doc_class_[positions].ravel()), votes.ravel())
        proba /= proba.sum(axis=1, keepdims=True)
        return proba.astype(np.float32)


class NearestDocumentClassifier(_IndexClassifier):
    """The label of the nearest reference document; each class may have several documents.

    ``predict_proba`` is ``softmax(best score per class / temperature)``, where a Euclidean
    distance counts as its negative; a lower temperature gives sharper probabilities.
    """

    def __init__(self, encoder: Any = None, *, metric: str = "cosine", temperature: float = 0.05,
                 backend: str = "exact") -> None:
        super().__init__(encoder, metric=metric, backend=backend)
        self.temperature = temperature

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of each class's best score, ``(n, n_classes)`` float32."""
        if not self.temperature > 0:
            raise InputError(f"temperature must be positive, got {self.temperature}")
        check_is_fitted(self, "index_", msg="This %(name)s is not fitted yet; call fit(X, y) first.")
        # Each class's best document is almost always among the first few hundred neighbours;
        # a class absent from them gets probability 0. This bounds the work on large indexes.
        n = min(len(self.index_), max(100, 10 * len(self.classes_)))
        scores, positions = self._neighbours(X, n)
        nearness = self.index_.metric.nearness(scores).astype(np.float64)
        best = np.full((len(positions), len(self.classes_)), -np.inf)
        rows = np.repeat(np.arange(len(positions)), positions.shape[1])
        np.maximum.at(best, (rows, self.doc_class_[positions].ravel()), nearness.ravel())
        return softmax(best / self.temperature).astype(np.float32)


def index_classifier(index: Index, *, mode: str = "auto", k: int = 10,
                     weights: str = "uniform") -> _IndexClassifier:
    """A classifier over a built index.

    ``mode`` "knn" votes among the ``k`` nearest documents; "nearest" gives the label of the
    nearest document; "auto" picks "nearest" when every label has exactly one document (an index
    of Wikipedia pages, labelled by title) and "knn" otherwise.
    """
    if mode not in ("auto", "knn", "nearest"):
        raise InputError(f"unknown mode {mode!r}; valid values are 'auto', 'knn', 'nearest'")
    if mode == "auto":
        labels = [lab if lab is not None else title for lab, title in zip(index.labels, index.titles)]
        mode = "nearest" if len(set(labels)) == len(labels) else "knn"
    if mode == "nearest":
        return NearestDocumentClassifier.from_index(index)
    return KNNClassifier.from_index(index, k=k, weights=weights)
