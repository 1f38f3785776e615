"""The teacher: an ensemble of classifiers that see the texts in different ways (training only).

Members (each a :class:`TeacherMember`):

- sentence-embedding members: a packaged MiniLM model (:mod:`simtools.encoders.teacher`) turns
  a text into a 384-d vector and a trained head classifies it (multinomial logistic regression,
  or a one-hidden-layer MLP);
- sparse members: TF-IDF word n-grams or character n-grams with a linear classifier
  (logistic regression, or SGD on the log loss);
- seed copies: ``name*3`` builds three members of one kind that differ only in their random
  seed (Hinton et al.'s ensembles of identically built nets).

Combination: the ensemble's logits are the (weighted) mean of the members' log-probabilities.
``softmax(logits)`` is therefore the normalised geometric mean of the members' probabilities;
``predict_logits`` returns the mean itself, so a student can divide it by a temperature. A
member's probabilities are clipped at 1e-7 before the log, so one over-confident member cannot
veto a class with ``-inf``.

Sentence embeddings (and, for ensembles with such members, the ensemble's logits) are cached
on disk by :class:`~simtools.distill.cache.TeacherCache`, keyed by model identity and text.

:func:`make_teacher` builds the usual ensembles: ``"default"`` (both MiniLM models, word and
character n-grams, three seed copies of an MLP head), ``"sparse"`` (n-gram members only: no
ONNX, seconds to fit; for tests and quick runs) or a comma list of member names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._math import softmax
from .._validation import check_texts
from .cache import ENSEMBLE_CACHE_PREFIX, TeacherCache

__all__ = [
    "MEMBER_KINDS",
    "SPECS",
    "EmbeddingMember",
    "EmbeddingSource",
    "SparseMember",
    "TeacherEnsemble",
    "TeacherMember",
    "make_teacher",
]

logger = logging.getLogger(__name__)

#: Cache model ids of fitted ensembles start with this: one store per fitted ensemble (its
#: fingerprint), cheap to recompute, unlike the sentence-embedding stores.

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


def _digest_texts(texts: list[str], labels: list[Any]) -> str:
    h = hashlib.sha1()
    for text, label in zip(texts, labels, strict=True):
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
        h.update(str(label).encode("utf-8"))
        h.update(b"\1")
    return h.hexdigest()


class TeacherEnsemble:
    """Members trained on the same labelled texts; predictions are averaged log-probabilities.

    Parameters
    ----------
    members : the :class:`TeacherMember` objects (names must be distinct).
    weights : one non-negative weight per member (default: equal). A kind with three seed
        copies thus weighs three times as much as a single member, as in Hinton et al.
    cache : where slow outputs are cached; None: no disk cache for the ensemble's logits.
    cache_logits : cache ``predict_logits`` per text (default: when a member is slow).
    progress : ``progress(stage, done, total)`` while fitting and predicting.
    """

    def __init__(self, members: Sequence[TeacherMember], *, weights: Sequence[float] | None = None,
                 cache: TeacherCache | None = None, cache_logits: bool | None = None,
                 progress: Progress | None = None) -> None:
        members = list(members)
        if not members:
            raise ValueError("a TeacherEnsemble needs at least one member; see make_teacher()")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"member names must be distinct, got {names}")
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
                raise ValueError(f"weights must be {len(members)} non-negative numbers with a "
                                 f"positive sum, got {weights}")
        self.members = members
        self.weights = weights
        self.cache = cache
        self.cache_logits = cache_logits
        self.progress = progress

    def __repr__(self) -> str:
        return f"TeacherEnsemble([{', '.join(m.name for m in self.members)}])"

    @property
    def member_names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def labels(self) -> list[str]:
        """Class names, in the column order of ``predict_logits``."""
        self._check_fitted()
        return list(self.labels_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "labels_"):
            raise RuntimeError("this TeacherEnsemble is not fitted yet; call fit(texts, labels)")

    def _report(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def fit(self, texts: Sequence[str], labels: Sequence[Any]) -> TeacherEnsemble:
        """Train every member on ``texts`` and their ``labels`` (any hashable; kept as str)."""
        texts = check_texts(texts)
        labels = list(labels)
        if len(labels) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(labels)} labels; give one label "
                             "per text")
        classes = sorted(set(labels), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise ValueError(f"need at least 2 classes to train a teacher, got {classes}")
        self.labels_ = [str(c) for c in classes]
        if len(set(self.labels_)) != len(classes):
            raise ValueError(f"labels {classes} collide once turned into strings; use distinct "
                             "names")
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[v] for v in labels], dtype=np.int64)
        for i, member in enumerate(self.members):
            logger.info("fitting teacher member %s (%d/%d) on %d texts", member.name, i + 1,
                        len(self.members), len(texts))
            self._report(f"fit {member.name}", i, len(self.members))
            member.fit(texts, y, len(classes))
        self._report("fit", len(self.members), len(self.members))
        import sklearn

        ident = {"recipe": _RECIPE_VERSION, "sklearn": sklearn.__version__,
                 "members": [[m.name, m.identity()] for m in self.members],
                 "weights": self.weights, "labels": self.labels_,
                 "data": _digest_texts(texts, labels)}
        self.fingerprint_ = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()
        return self

    def _member_log_probs(self, texts: list[str]) -> list[np.ndarray]:
        out = []
        for i, member in enumerate(self.members):
            self._report(f"predict {member.name}", i, len(self.members))
            out.append(member.predict_log_proba(texts))
        return out

    def _combine(self, log_probs: list[np.ndarray]) -> np.ndarray:
        w = np.ones(len(log_probs)) if self.weights is None else np.asarray(self.weights)
        stacked = np.stack(log_probs).astype(np.float64)
        mean = np.tensordot(w / w.sum(), stacked, axes=1)
        return np.ascontiguousarray(mean, dtype=np.float32)

    def _compute_logits(self, texts: list[str]) -> np.ndarray:
        return self._combine(self._member_log_probs(texts))

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        """Ensemble logits, float32 ``(n, n_classes)``, columns in the order of :attr:`labels`.

        Each row is the weighted mean of the members' log-probabilities (softmax of it is the
        normalised geometric mean of their probabilities).
        """
        self._check_fitted()
        texts = check_texts(texts, allow_empty=True)
        use_cache = self.cache_logits
        if use_cache is None:
            use_cache = any(m.slow for m in self.members)
        if self.cache is None or not use_cache:
            return self._compute_logits(texts)
        return self.cache.get_or_compute(f"{ENSEMBLE_CACHE_PREFIX}{self.fingerprint_}", texts,
                                         self._compute_logits)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``softmax(predict_logits(texts))``: float32 ``(n, n_classes)``."""
        return softmax(self.predict_logits(texts).astype(np.float64)).astype(np.float32)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most likely label of each text."""
        return [self.labels_[i] for i in self.predict_logits(texts).argmax(axis=1)]

    def embedding_source(self) -> EmbeddingSource:
        """The MiniLM-L6 embedding source (else the first embedding source) of the ensemble."""
        sources = [m.source for m in self.members if isinstance(m, EmbeddingMember)]
        if not sources:
            raise ValueError(f"this teacher ({', '.join(self.member_names)}) has no sentence-"
                             "embedding member, so it cannot embed texts; build it with "
                             "make_teacher('default') or add 'minilm-lr' to the spec")
        for source in sources:
            if source.model == "minilm":
                return source
        return sources[0]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised sentence embeddings, float32 ``(n, 384)``, from the MiniLM-L6 member."""
        source = self.embedding_source()
        return source.embed(check_texts(texts, allow_empty=True))

    def member_scores(self, texts: Sequence[str], labels: Sequence[Any]) -> dict[str, float]:
        """Macro-F1 of every member and of the ensemble (key ``"ensemble"``) on ``texts``."""
        from sklearn.metrics import f1_score

        self._check_fitted()
        texts = check_texts(texts, allow_empty=True)
        labels = [str(v) for v in labels]
        if len(labels) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
        index = {c: i for i, c in enumerate(self.labels_)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(f"labels {unknown[:5]} were not seen in fit; known labels are "
                             f"{self.labels_}")
        y = np.array([index[v] for v in labels], dtype=np.int64)
        log_probs = self._member_log_probs(texts)
        every = list(range(len(self.labels_)))
        scores = {m.name: float(f1_score(y, lp.argmax(axis=1), average="macro", labels=every))
                  for m, lp in zip(self.members, log_probs, strict=True)}
        ensemble = self._combine(log_probs).argmax(axis=1)
        scores["ensemble"] = float(f1_score(y, ensemble, average="macro", labels=every))
        return scores


def _parse_spec(spec: str) -> list[tuple[str, int]]:
    text = SPECS.get(spec.strip().lower(), spec)
    items: list[tuple[str, int]] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        name, _, copies = item.partition("*")
        name = name.strip()
        if name not in MEMBER_KINDS:
            valid = ", ".join([*SPECS, *MEMBER_KINDS])
            raise ValueError(f"unknown teacher member {name!r} in spec {spec!r}; valid names are "
                             f"{valid} (a comma list; 'name*3' adds three seed copies)")
        try:
            n = int(copies) if copies else 1
        except ValueError:
            raise ValueError(f"bad copy count {copies!r} in {item!r}; write e.g. "
                             f"'{name}*3'") from None
        if n < 1:
            raise ValueError(f"copy count must be at least 1 in {item!r}")
        items.append((name, n))
    if not items:
        raise ValueError(f"teacher spec {spec!r} names no member; e.g. 'sparse' or 'word-lr,char-lr'")
    return items


def make_teacher(spec: str = "default", *, seed: int = 0,
                 cache_dir: str | os.PathLike[str] | bool | None = None,
                 batch_size: int = 64, num_threads: int | None = None,
                 progress: Progress | None = None) -> TeacherEnsemble:
    """Build an unfitted :class:`TeacherEnsemble` from a spec.

    ``spec``: ``"default"`` (MiniLM-L6 int8 + paraphrase-MiniLM-L3 logistic heads, word and
    character n-gram logistic regressions, three seeded MLP heads on MiniLM), ``"sparse"``
    (word and character n-grams, three seeded SGD word models: no ONNX) or a comma list of
    names from :data:`MEMBER_KINDS`, where ``name*3`` adds three seed copies.

    ``cache_dir``: where embeddings and logits are cached; None: ``$SIMTOOLS_CACHE_DIR/teacher`` or
    ``~/.cache/simtools/teacher``; False: no disk cache. ``seed`` seeds every member (copy
    ``k`` of a kind gets ``seed + k``).
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a str, got {type(spec).__name__}")
    items = _parse_spec(spec)
    if cache_dir is False:
        cache = None
    elif isinstance(cache_dir, TeacherCache):
        cache = cache_dir
    else:
        cache = TeacherCache(None if cache_dir in (None, True) else cache_dir)  # type: ignore[arg-type]
    sources: dict[str, EmbeddingSource] = {}
    members: list[TeacherMember] = []
    for name, copies in items:
        kind, options = MEMBER_KINDS[name]
        for k in range(copies):
            member_name = name if copies == 1 else f"{name}-s{k}"
            if kind == "sparse":
                members.append(SparseMember(member_name, seed=seed + k, **options))
            else:
                model = options["model"]
                if model not in sources:
                    sources[model] = EmbeddingSource(model, cache=cache, batch_size=batch_size,
                                                     num_threads=num_threads, progress=progress)
                members.append(EmbeddingMember(member_name, sources[model], head=options["head"],
                                               seed=seed + k))
    return TeacherEnsemble(members, cache=cache, progress=progress)
