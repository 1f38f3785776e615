"""Which metric and encoder classify your texts best: cross-validated k-NN, metric x encoder.

The metric lesson of ``benchmarks/bench_metrics_lesson.py`` on any labelled data: for every
chosen encoder and metric, a :class:`~simtools.classify.KNNClassifier` is scored by stratified
k-fold cross-validation (scikit-learn's ``StratifiedKFold``, shuffled with the seed), with
accuracy and macro-F1 from :func:`simtools.evaluation.score_predictions`.

Per fold, an encoder that learns from texts (count, tfidf, bm25, ...) is fitted on the training
folds only, and the training and held-out texts are encoded once; every metric then indexes
the same vectors. A pretrained encoder (minilm, student) encodes every text once for all folds,
and each fold is charged its share of that time. So ``build_s`` (fit, encode and index the
training folds) and ``query_s`` (encode and classify the held-out fold) are what one
combination would take on its own.

A text the encoder cannot place (no token it knows) is left out of the index when it is a
training text, and counted as a wrong answer when it is a held-out one (``unplaced``).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import check_int, check_k
from ..errors import InputError
from ..evaluation import score_predictions
from ..metrics import Metric, row_norms
from .common import (
    PRETRAINED,
    Progress,
    Skipped,
    check_encoders,
    check_max_docs,
    check_metrics,
    check_seed,
    combinations,
    make_encoder_or_skip,
    sample_positions,
)

__all__ = ["MetricsReport", "MetricsResult", "benchmark_metrics", "stratified_folds"]

logger = logging.getLogger(__name__)


@dataclass
class MetricsResult:
    """One encoder under one metric: a figure per fold."""

    encoder: str
    metric: str
    accuracy: list[float] = field(default_factory=list)
    macro_f1: list[float] = field(default_factory=list)
    build_s: list[float] = field(default_factory=list)
    query_s: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    unplaced: int = 0

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean(self.accuracy))

    @property
    def accuracy_std(self) -> float:
        return float(np.std(self.accuracy))

    @property
    def macro_f1_mean(self) -> float:
        return float(np.mean(self.macro_f1))

    @property
    def macro_f1_std(self) -> float:
        return float(np.std(self.macro_f1))

    @property
    def queries_per_s(self) -> float:
        return sum(self.queries) / max(sum(self.query_s), 1e-12)

    def to_dict(self) -> dict[str, Any]:
        return {"encoder": self.encoder, "metric": self.metric,
                "accuracy": self.accuracy_mean, "accuracy_std": self.accuracy_std,
                "macro_f1": self.macro_f1_mean, "macro_f1_std": self.macro_f1_std,
                "accuracy_folds": self.accuracy, "macro_f1_folds": self.macro_f1,
                "build_s": float(np.mean(self.build_s)), "query_s": float(np.mean(self.query_s)),
                "queries_per_s": self.queries_per_s, "unplaced": self.unplaced}


@dataclass
class MetricsReport:
    """Every combination's cross-validated scores, and what was sampled or skipped."""

    documents: int
    classes: list[str]
    folds: int
    k: int
    seed: int
    results: list[MetricsResult]
    skipped: list[Skipped] = field(default_factory=list)
    sampled_from: int | None = None  # the number of documents before --max-docs sampled them
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> list[MetricsResult]:
        """The combinations with the highest mean accuracy (several when they tie)."""
        if not self.results:
            return []
        top = max(r.accuracy_mean for r in self.results)
        return [r for r in self.results if r.accuracy_mean >= top - 1e-12]

    def to_dict(self) -> dict[str, Any]:
        best = {(r.encoder, r.metric) for r in self.best}
        return {"documents": self.documents, "classes": self.classes, "folds": self.folds,
                "k": self.k, "seed": self.seed, "sampled_from": self.sampled_from,
                "results": [{**r.to_dict(), "best": (r.encoder, r.metric) in best}
                            for r in self.results],
                "best": [{"encoder": r.encoder, "metric": r.metric, "accuracy": r.accuracy_mean}
                         for r in self.best],
                "skipped": [s.to_dict() for s in self.skipped], "notes": self.notes}


def stratified_folds(labels: Sequence[Any] | np.ndarray, folds: int = 5, seed: int = 0
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train positions, held-out positions)`` of each of ``folds`` stratified, shuffled folds
    (scikit-learn's ``StratifiedKFold(folds, shuffle=True, random_state=seed)``)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray([str(label) for label in labels])
    _check_folds(y, check_int(folds, "folds", minimum=2))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=check_seed(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a small class: noted by the caller
        return list(splitter.split(np.zeros(len(y)), y))


def _check_folds(y: np.ndarray, folds: int) -> None:
    counts = Counter(y.tolist())
    if len(counts) < 2:
        only = f" ({next(iter(counts))!r})" if counts else ""
        raise InputError(f"the data has a single class{only}; classification needs texts of at "
                         "least two labels")
    if len(y) < folds:
        raise InputError(f"{len(y)} documents but folds={folds}; every fold needs at least one "
                         f"held-out document: use folds={len(y)} or fewer, or more data")
    if max(counts.values()) < folds:
        raise InputError(f"every class has fewer than folds={folds} documents (the largest has "
                         f"{max(counts.values())}); use fewer folds, or more data per class")


def benchmark_metrics(texts: Sequence[str], labels: Sequence[Any], *,
                      encoders: str | Sequence[str] = ("count",),
                      metrics: str | Sequence[str | Metric] | None = None, folds: int = 5,
                      k: int = 5, seed: int = 0, max_docs: int | None = None,
                      progress: Progress | None = None) -> MetricsReport:
    """Cross-validated k-NN accuracy and macro-F1 of every encoder under every metric.

    ``texts`` and ``labels`` pair up; ``metrics`` None means all four; ``max_docs`` draws a
    seeded sample of that many documents first. ``progress(done, total)`` is called after each
    fold of each encoder. Raises InputError for a single class, fewer documents than folds,
    or an unknown encoder or metric.
    """
    names = check_encoders(encoders)
    pairs, skipped = combinations(names, check_metrics(metrics))
    k, seed, max_docs = check_k(k), check_seed(seed), check_max_docs(max_docs)
    texts, y = _inputs(texts, labels)
    given = len(texts)
    picked = sample_positions(given, max_docs, seed)
    if picked is not None:
        texts, y = [texts[i] for i in picked], y[picked]
    splits = stratified_folds(y, folds, seed)
    classes = sorted(set(y.tolist()))
    report = MetricsReport(len(texts), classes, folds, k, seed, [], skipped,
                           None if picked is None else given)
    smallest = min(Counter(y.tolist()).values())
    if smallest < folds:
        report.notes.append(f"the smallest class has {smallest} document(s), fewer than the "
                            f"{folds} folds: some folds hold none of it")
    run = _Run(texts, y, classes, splits, k, progress,
               total=len(dict.fromkeys(e for e, _ in pairs)) * len(splits))
    for encoder in dict.fromkeys(e for e, _ in pairs):
        wanted = [m for e, m in pairs if e == encoder]
        found, skip = run.encoder(encoder, wanted)
        report.results.extend(found)
        report.skipped.extend([skip] if skip else [])
    return report


def _inputs(texts: Sequence[str], labels: Sequence[Any]) -> tuple[list[str], np.ndarray]:
    if isinstance(texts, str) or isinstance(labels, str):
        raise InputError("texts and labels must be sequences, one item per document")
    texts = list(texts)
    if len(texts) != len(labels):
        raise InputError(f"{len(texts)} texts but {len(labels)} labels; they must pair up")
    if not texts:
        raise InputError("no texts to benchmark; give labelled texts")
    return texts, np.asarray([str(label) for label in labels])


class _Run:
    """The folds of one benchmark, encoder by encoder."""

    def __init__(self, texts: list[str], labels: np.ndarray, classes: list[str],
                 splits: list[tuple[np.ndarray, np.ndarray]], k: int, progress: Progress | None,
                 total: int) -> None:
        self.texts, self.labels = texts, labels
        self.classes, self.n_classes = np.asarray(classes), len(classes)
        self.codes = np.searchsorted(self.classes, labels)
        self.splits, self.k, self.progress = splits, k, progress
        self.total, self.done = total, 0

    def encoder(self, name: str, metrics: list[Metric]
                ) -> tuple[list[MetricsResult], Skipped | None]:
        """Every metric's result for one encoder, or its Skipped record (a missing extra)."""
        results = [MetricsResult(name, m.value) for m in metrics]
        try:
            shared = self._encode_all(name) if name.partition(":")[0] in PRETRAINED else None
            for train, test in self.splits:
                vectors = shared if shared is not None else self._encode_fold(name, train, test)
                for result, metric in zip(results, metrics):
                    self._score(result, metric, vectors, train, test)
                self._advance()
        except ImportError as e:
            self._advance(len(self.splits))
            return [], Skipped(name, str(e))
        return results, None

    def _advance(self, steps: int = 1) -> None:
        self.done = min(self.total, self.done + steps)
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _encode_all(self, name: str) -> _Vectors:
        """A pretrained encoder's vectors of every text, and its time per text."""
        encoder, skipped = make_encoder_or_skip(name)
        if skipped is not None:
            raise ImportError(skipped.reason)
        start = time.perf_counter()
        encoder.fit([t for t in self.texts if t.strip()][:1])
        fitted = time.perf_counter()
        X = encoder.encode(self.texts)
        return _Vectors(X, X, fitted - start, (time.perf_counter() - fitted) / len(self.texts))

    def _encode_fold(self, name: str, train: np.ndarray, test: np.ndarray) -> _Vectors:
        encoder, skipped = make_encoder_or_skip(name)
        if skipped is not None:
            raise ImportError(skipped.reason)
        start = time.perf_counter()
        encoder.fit([self.texts[i] for i in train if self.texts[i].strip()])
        fitted = time.perf_counter()
        X_train = encoder.encode([self.texts[i] for i in train])
        encoded = time.perf_counter()
        queries = getattr(encoder, "encode_queries", encoder.encode)
        X_test = queries([self.texts[i] for i in test])
        return _Vectors(X_train, X_test, fitted - start, 0.0,
                        train_s=encoded - fitted, test_s=time.perf_counter() - encoded)

    def _score(self, result: MetricsResult, metric: Metric, vectors: _Vectors,
               train: np.ndarray, test: np.ndarray) -> None:
        from ..classify import KNNClassifier

        X_train, X_test = vectors.train(train), vectors.test(test)
        placed_train = np.flatnonzero(row_norms(X_train) > 0)
        placed_test = np.flatnonzero(row_norms(X_test) > 0)
        if not len(placed_train):
            raise InputError(f"the {result.encoder} encoder places none of the training texts "
                             "of a fold (no token it knows); use another encoder")
        start = time.perf_counter()
        model = KNNClassifier(None, k=self.k, metric=metric.value)
        model.fit(X_train[placed_train], self.labels[train][placed_train])
        built = time.perf_counter()
        # Unplaced held-out texts get the extra class n_classes: always a wrong answer.
        predicted = np.full(len(test), self.n_classes, dtype=np.int64)
        if len(placed_test):
            proba = model.predict_proba(X_test[placed_test])
            names = model.classes_[np.argmax(proba, axis=1)].astype(str)
            predicted[placed_test] = np.searchsorted(self.classes, names)
        answered = time.perf_counter()
        scores = score_predictions(self.codes[test], predicted, self.n_classes + 1)
        result.accuracy.append(scores["accuracy"])
        result.macro_f1.append(float(np.mean(scores["f1_per_class"][: self.n_classes])))
        result.build_s.append(vectors.fit_s + vectors.train_share(len(train)) + built - start)
        result.query_s.append(vectors.test_share(len(test)) + answered - built)
        result.queries.append(len(test))
        result.unplaced += len(test) - len(placed_test)


@dataclass
class _Vectors:
    """One fold's vectors: a pretrained encoder's for every text (``train is test``, indexed by
    position), or an encoder fitted on the fold's training texts (its two blocks)."""

    train_block: Any
    test_block: Any
    fit_s: float
    per_text_s: float
    train_s: float = 0.0
    test_s: float = 0.0

    @property
    def shared(self) -> bool:
        return self.train_block is self.test_block

    def train(self, positions: np.ndarray) -> Any:
        return self.train_block[positions] if self.shared else self.train_block

    def test(self, positions: np.ndarray) -> Any:
        return self.test_block[positions] if self.shared else self.test_block

    def train_share(self, n: int) -> float:
        return n * self.per_text_s if self.shared else self.train_s

    def test_share(self, n: int) -> float:
        return n * self.per_text_s if self.shared else self.test_s
