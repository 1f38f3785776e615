"""The teacher's members: what each classifier of the ensemble sees and how it is fitted.

- :class:`SparseMember`: TF-IDF word or character n-grams with a linear classifier;
- :class:`EmbeddingMember`: a packaged sentence-embedding model (:class:`EmbeddingSource`,
  cached) with a logistic-regression or MLP head;
- :data:`MEMBER_KINDS` names every member a teacher spec can ask for, :data:`SPECS` the usual
  ensembles. :class:`~simtools.distill.teacher.TeacherEnsemble` combines them.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from .cache import TeacherCache

__all__ = ["MEMBER_KINDS", "SPECS", "EmbeddingMember", "EmbeddingSource", "Progress",
           "SparseMember", "TeacherMember"]

logger = logging.getLogger(__name__)

#: Called as ``progress(stage, done, total)``, e.g. ``("embed minilm", 640, 3257)``.
Progress = Callable[[str, int, int], None]

_MIN_PROB = 1e-7
# Part of every cache fingerprint: bump it when a member's recipe changes (features, solver),
# so that logits cached by an older recipe are not reused.
_RECIPE_VERSION = 1
# Tweets: keep hashtags, mentions and single punctuation marks / emoji as tokens ("!" and
# emoji carry much of the emotion).
_WORD_PATTERN = r"(?u)[#@]?\w[\w']*|[^\w\s]"


def _one_blas_thread() -> Any:
    """A context in which BLAS runs single-threaded.

    The heads are small (3,000 x 384 inputs, 256 hidden units): on the 2-core machine shared
    with other jobs, two BLAS threads made an MLP head 7x slower (12 s against 1.7 s).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _log_proba(model: Any, X: Any, n_classes: int) -> np.ndarray:
    """``model.predict_proba`` as clipped, renormalised log-probabilities in class-index order."""
    with _one_blas_thread():
        proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    out = np.full((proba.shape[0], n_classes), _MIN_PROB)
    out[:, np.asarray(model.classes_, dtype=np.int64)] = proba
    out = np.clip(out, _MIN_PROB, 1.0)
    out /= out.sum(axis=1, keepdims=True)
    return np.log(out).astype(np.float32)


class TeacherMember(ABC):
    """One classifier of the ensemble: ``fit`` on class indices, ``predict_log_proba``."""

    name: str
    #: True when the member runs a neural encoder (its outputs are worth caching).
    slow: bool = False

    @abstractmethod
    def fit(self, texts: list[str], y: np.ndarray, n_classes: int) -> None:
        """Train on ``texts`` with class indices ``y`` (int64, values in ``[0, n_classes)``)."""

    @abstractmethod
    def predict_log_proba(self, texts: list[str]) -> np.ndarray:
        """float32 ``(n, n_classes)`` log-probabilities."""

    #: The member's kind and the settings that decide its outputs, in ``identity()`` order.
    kind: str
    settings: tuple[str, ...] = ()
    #: Settings restricted to a few values: name -> the valid values.
    choices: dict[str, tuple[str, ...]] = {}

    def _configure(self, name: str, **settings: Any) -> None:
        """Check the restricted settings, then keep the name and every setting as attributes."""
        for key, valid in self.choices.items():
            if settings[key] not in valid:
                raise ValueError(f"unknown {key} {settings[key]!r}; valid values are "
                                 f"{', '.join(repr(v) for v in valid)}")
        self.name = name
        for key, value in settings.items():
            setattr(self, key, value)

    def identity(self) -> dict[str, Any]:
        """Everything that determines the member's outputs (for cache fingerprints)."""
        return {"kind": self.kind, **{key: getattr(self, key) for key in self.settings}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class SparseMember(TeacherMember):
    """TF-IDF word or character n-grams and a linear classifier."""

    kind = "sparse"
    settings = ("analyzer", "classifier", "seed", "C", "alpha")
    analyzer: str
    classifier: str
    seed: int
    C: float
    alpha: float
    choices = {"analyzer": ("word", "char"), "classifier": ("logreg", "sgd")}

    def __init__(self, name: str, *, analyzer: str = "word", classifier: str = "logreg",
                 seed: int = 0, C: float = 4.0, alpha: float = 2e-5) -> None:
        self._configure(name, analyzer=analyzer, classifier=classifier, seed=seed, C=C,
                        alpha=alpha)

    def fit(self, texts: list[str], y: np.ndarray, n_classes: int) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression, SGDClassifier

        if self.analyzer == "word":
            # Unigrams: adding bigrams lowered macro-F1 on TweetEval emotion (0.58 -> 0.53).
            self.vectorizer_ = TfidfVectorizer(sublinear_tf=True, token_pattern=_WORD_PATTERN,
                                               dtype=np.float32)
        else:
            self.vectorizer_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5),
                                               min_df=2 if len(texts) >= 50 else 1,
                                               sublinear_tf=True, max_features=300_000,
                                               dtype=np.float32)
        X = self.vectorizer_.fit_transform(texts)
        if self.classifier == "logreg":
            # saga: same solution as lbfgs on these problems, 5-20x faster on sparse inputs.
            self.model_ = LogisticRegression(C=self.C, solver="saga", max_iter=2000,
                                             random_state=self.seed)
        else:
            self.model_ = SGDClassifier(loss="log_loss", alpha=self.alpha, max_iter=50, tol=1e-4,
                                        random_state=self.seed)
        with _one_blas_thread():
            self.model_.fit(X, y)
        self.n_classes_ = n_classes

    def predict_log_proba(self, texts: list[str]) -> np.ndarray:
        return _log_proba(self.model_, self.vectorizer_.transform(texts), self.n_classes_)


class EmbeddingSource:
    """Sentence embeddings of one packaged model, cached on disk, shared by several members.

    ``embed`` remembers its last answer in memory too, so members that share a source (a
    logistic head and three seeded MLP heads on MiniLM) embed a batch of texts only once.
    """

    def __init__(self, model: str = "minilm", *, cache: TeacherCache | None = None,
                 batch_size: int = 64, num_threads: int | None = None,
                 progress: Progress | None = None) -> None:
        from ..encoders.teacher import SentenceEncoder

        self.encoder = SentenceEncoder(model, batch_size=batch_size, num_threads=num_threads)
        self.model = self.encoder.model
        self.model_id = self.encoder.model_id  # raises ImportError if the package is absent
        self.cache = cache
        self.progress = progress
        self._memo: tuple[str, np.ndarray] | None = None

    def forget(self) -> None:
        """Drop the last batch's vectors kept in memory (so the next ``embed`` recomputes or
        reads the cache)."""
        self._memo = None

    def _compute(self, texts: list[str]) -> np.ndarray:
        report = None
        if self.progress is not None:
            stage, callback = f"embed {self.model}", self.progress

            def report(done: int, total: int) -> None:
                callback(stage, done, total)

        return self.encoder.embed(texts, progress=report)

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised float32 ``(len(texts), dim)``."""
        digest = hashlib.sha1("\0".join(texts).encode("utf-8", "surrogatepass")).hexdigest()
        if self._memo is not None and self._memo[0] == digest:
            return self._memo[1]
        if self.cache is None:
            X = self._compute(texts)
        else:
            X = self.cache.get_or_compute(self.model_id, texts, self._compute)
        self._memo = (digest, X)
        return X


class EmbeddingMember(TeacherMember):
    """A trained head (logistic regression or MLP) on a packaged model's sentence embeddings."""

    slow = True

    kind = "embedding"
    settings = ("head", "seed", "C", "hidden")
    head: str
    seed: int
    C: float
    hidden: int
    choices = {"head": ("logreg", "mlp")}

    def __init__(self, name: str, source: EmbeddingSource, *, head: str = "logreg",
                 seed: int = 0, C: float = 10.0, hidden: int = 256) -> None:
        self._configure(name, head=head, seed=seed, C=C, hidden=hidden)
        self.source = source

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "model_id": self.source.model_id}

    def fit(self, texts: list[str], y: np.ndarray, n_classes: int) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier

        X = self.source.embed(texts)
        if self.head == "logreg":
            self.model_: Any = LogisticRegression(C=self.C, max_iter=3000, random_state=self.seed)
        else:
            self.model_ = MLPClassifier(hidden_layer_sizes=(self.hidden,), alpha=1e-3,
                                        early_stopping=len(texts) >= 200, max_iter=300,
                                        n_iter_no_change=10, random_state=self.seed)
        with _one_blas_thread():
            self.model_.fit(X, y)
        self.n_classes_ = n_classes

    def predict_log_proba(self, texts: list[str]) -> np.ndarray:
        return _log_proba(self.model_, self.source.embed(texts), self.n_classes_)


# name -> (kind, options). "minilm-*" and "paraphrase-*" need the [teacher] extra.
MEMBER_KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "minilm-lr": ("embedding", {"model": "minilm", "head": "logreg"}),
    "minilm-mlp": ("embedding", {"model": "minilm", "head": "mlp"}),
    "paraphrase-lr": ("embedding", {"model": "paraphrase-l3", "head": "logreg"}),
    "paraphrase-mlp": ("embedding", {"model": "paraphrase-l3", "head": "mlp"}),
    "word-lr": ("sparse", {"analyzer": "word", "classifier": "logreg"}),
    "word-sgd": ("sparse", {"analyzer": "word", "classifier": "sgd"}),
    "char-lr": ("sparse", {"analyzer": "char", "classifier": "logreg"}),
    "char-sgd": ("sparse", {"analyzer": "char", "classifier": "sgd"}),
}

#: Named ensembles; ``name*3`` means three seed copies of ``name``.
SPECS: dict[str, str] = {
    "default": "minilm-lr,paraphrase-lr,word-lr,char-lr,minilm-mlp*3",
    "sparse": "word-lr,char-lr,word-sgd*3",
}
