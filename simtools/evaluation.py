"""Scores of a ranking against what should have been found: MRR, recall, precision, nDCG, Pearson.

The one implementation shared by ``benchmarks/bench_retrieval.py`` and the library: every
function takes, per query, the ids a search returned (best first) and what is relevant, and
returns the mean over the queries as a float.

``ranked`` is a sequence with one entry per query, each a sequence of ids best first (a list
of ids, or the :class:`~simtools.index.Neighbour` lists that ``Index.search`` returns: their
``id`` is used). A search may return fewer than ``k`` hits (a sparse index drops documents that
share no term with the query): the missing places count as misses.

``relevant`` has one entry per query too: one id (a ``str`` or a number: the known item), or a
collection of ids (``set``, ``frozenset``, ``list`` or ``tuple``). For :func:`ndcg_at_k` it may
also be a mapping from id to graded gain.

Definitions (for one query; the functions average them over the queries):

- ``mrr_at_k``: ``1 / rank`` of the first relevant hit within the top ``k``, else 0.
- ``recall_at_k``: relevant ids within the top ``k`` / relevant ids (for one known item: 1 if
  it is in the top ``k``, else 0). A query with nothing relevant is an error.
- ``precision_at_k``: relevant ids within the top ``k`` / ``k`` (not / hits returned: a short
  list is not rewarded for being short).
- ``ndcg_at_k``: DCG / ideal DCG with linear gains, ``sum(gain_i / log2(i + 1))`` over ranks
  ``i = 1..k`` (the ``trec_eval`` form); 0 when no gain is positive.
- ``label_precision_at_k``: precision@k where a hit is relevant when its label equals the
  query's (same-topic or same-label neighbours).
- ``pearson``: Pearson's correlation coefficient of two equal-length sequences of numbers.
- ``retrieval_scores``: several of the above at once, named ``"mrr@10"``, ``"recall@1"``, ...
  (what ``simtools benchmark search`` and ``benchmarks/bench_retrieval.py`` report).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from ._validation import check_k
from .errors import InputError

__all__ = ["RETRIEVAL_SCORES", "label_precision_at_k", "mrr_at_k", "ndcg_at_k", "pearson",
           "precision_at_k", "recall_at_k", "retrieval_scores", "score_predictions",
           "evaluate_classifier", "f1_per_class", "neighbour_recall"]

_COLLECTIONS = (set, frozenset, list, tuple)


def _ids(hits: Any) -> list[Hashable]:
    """The ids of one query's hits (plain ids, or objects with an ``id`` such as Neighbour)."""
    if isinstance(hits, (str, bytes)):
        raise InputError("each query's hits must be a sequence of ids, got one string; wrap "
                         "it in a list")
    return [getattr(hit, "id", hit) for hit in hits]


def _relevant_set(relevant: Any) -> set[Hashable]:
    if isinstance(relevant, Mapping):
        return {key for key, gain in relevant.items() if gain > 0}
    if isinstance(relevant, _COLLECTIONS):
        return set(relevant)
    return {relevant}


def _pairs(ranked: Sequence[Any], relevant: Sequence[Any], k: Any) -> tuple[int, list[Any]]:
    k = check_k(k)
    if isinstance(ranked, (str, bytes)) or isinstance(relevant, (str, bytes)):
        raise InputError("ranked and relevant take one entry per query; got a single string")
    if len(ranked) != len(relevant):
        raise InputError(f"got rankings for {len(ranked)} queries but relevance for "
                         f"{len(relevant)}; give one entry per query in both")
    if len(ranked) == 0:
        raise InputError("no queries to score; give at least one ranking")
    return k, list(zip(ranked, relevant))


def mrr_at_k(ranked: Sequence[Any], relevant: Sequence[Any], k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant hit within the top ``k`` (0 when none)."""
    k, pairs = _pairs(ranked, relevant, k)
    total = 0.0
    for hits, wanted in pairs:
        targets = _relevant_set(wanted)
        for rank, hit in enumerate(_ids(hits)[:k], 1):
            if hit in targets:
                total += 1.0 / rank
                break
    return total / len(pairs)


def recall_at_k(ranked: Sequence[Any], relevant: Sequence[Any], k: int = 10) -> float:
    """Mean share of each query's relevant ids found within its top ``k``."""
    k, pairs = _pairs(ranked, relevant, k)
    total = 0.0
    for number, (hits, wanted) in enumerate(pairs):
        targets = _relevant_set(wanted)
        if not targets:
            raise InputError(f"query {number} has no relevant id, so its recall is undefined; "
                             "leave such queries out")
        total += len(targets.intersection(_ids(hits)[:k])) / len(targets)
    return total / len(pairs)


def precision_at_k(ranked: Sequence[Any], relevant: Sequence[Any], k: int = 10) -> float:
    """Mean share of the top ``k`` places that hold a relevant id (missing places count 0)."""
    k, pairs = _pairs(ranked, relevant, k)
    total = 0
    for hits, wanted in pairs:
        targets = _relevant_set(wanted)
        total += sum(1 for hit in _ids(hits)[:k] if hit in targets)
    return total / (k * len(pairs))


def label_precision_at_k(neighbour_labels: Sequence[Sequence[Any]], query_labels: Sequence[Any],
                         k: int = 10) -> float:
    """Mean share of the top ``k`` neighbours whose label equals the query's label.

    ``neighbour_labels[i]`` are the labels of query ``i``'s hits, best first; ``query_labels[i]``
    is its own label.
    """
    k, pairs = _pairs(neighbour_labels, query_labels, k)
    total = 0
    for labels, own in pairs:
        if isinstance(labels, (str, bytes)):
            raise InputError("each query's neighbour labels must be a sequence, got one string")
        total += sum(1 for label in list(labels)[:k] if label == own)
    return total / (k * len(pairs))


def ndcg_at_k(ranked: Sequence[Any], relevant: Sequence[Any], k: int = 10) -> float:
    """Mean normalised discounted cumulative gain at ``k`` (linear gains; binary for id sets)."""
    k, pairs = _pairs(ranked, relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    total = 0.0
    for hits, wanted in pairs:
        if isinstance(wanted, Mapping):
            gains = {key: float(gain) for key, gain in wanted.items()}
            if any(not math.isfinite(g) or g < 0 for g in gains.values()):
                raise InputError("graded gains must be finite and non-negative numbers")
        else:
            gains = dict.fromkeys(_relevant_set(wanted), 1.0)
        ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
        if not ideal:
            continue
        dcg = sum(gains.get(hit, 0.0) * discounts[i] for i, hit in enumerate(_ids(hits)[:k]))
        total += dcg / float(np.dot(ideal, discounts[: len(ideal)]))
    return total / len(pairs)


#: The scores of a known-item or ad-hoc retrieval run, as :func:`retrieval_scores` names them.
RETRIEVAL_SCORES = ("mrr@10", "recall@1", "recall@10", "ndcg@10")


def retrieval_scores(ranked: Sequence[Any], relevant: Sequence[Any],
                     names: Sequence[str] = RETRIEVAL_SCORES) -> dict[str, float]:
    """Several ranking scores at once, by name: ``"mrr@K"``, ``"recall@K"``, ``"precision@K"``
    or ``"ndcg@K"`` for any cutoff ``K`` (default: MRR@10, recall@1, recall@10, nDCG@10)."""
    scores = {}
    for name in names:
        kind, _, cutoff = str(name).partition("@")
        score = _RANKING_SCORES.get(kind)
        if score is None or not cutoff.isdigit():
            raise InputError(f"unknown score {name!r}; name one as KIND@K with KIND among "
                             f"{', '.join(_RANKING_SCORES)}, e.g. 'mrr@10'")
        scores[name] = score(ranked, relevant, int(cutoff))
    return scores


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Pearson's r of two equal-length sequences of finite numbers (at least two each)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InputError(f"pearson needs two sequences of the same length, got {a.size} and "
                         f"{b.size}")
    if a.size < 2:
        raise InputError(f"pearson needs at least two pairs of values, got {a.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError("pearson got a NaN or infinite value; drop or fix those pairs")
    a = a - a.mean()
    b = b - b.mean()
    spread = math.sqrt(float(a @ a) * float(b @ b))
    if spread == 0:
        raise InputError("pearson is undefined when one sequence is constant (it has no "
                         "variance); every score was the same")
    return float(a @ b) / spread


_RANKING_SCORES = {"mrr": mrr_at_k, "recall": recall_at_k, "precision": precision_at_k,
                   "ndcg": ndcg_at_k}


# -- classification ---------------------------------------------------------------------------
def f1_per_class(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """F1 of every class, float64 ``(n_classes,)``; a class absent from both counts 0.

    Batched too: ``(B, n)`` label arrays give ``(B, n_classes)``, one row per row of tweets
    (the bootstrap resamples them that way)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    rows = y_true.reshape(-1, y_true.shape[-1])
    cells = n_classes * n_classes
    flat = (np.arange(len(rows))[:, None] * cells + rows * n_classes
            + y_pred.reshape(rows.shape)).ravel()
    confusion = np.bincount(flat, minlength=len(rows) * cells)
    confusion = confusion.reshape(len(rows), n_classes, n_classes)
    tp = np.diagonal(confusion, axis1=1, axis2=2).astype(np.float64)
    denom = confusion.sum(axis=1) + confusion.sum(axis=2)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return f1.reshape(*y_true.shape[:-1], n_classes)


def score_predictions(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Accuracy, macro-F1 (classes absent from both count 0, like scikit-learn with
    ``labels=range(n_classes)``), the F1 of every class and the confusion matrix (rows: true,
    columns: predicted)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    confusion = np.bincount(y_true * n_classes + y_pred,
                            minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    f1 = f1_per_class(y_true, y_pred, n_classes)
    return {"accuracy": float(np.trace(confusion) / max(len(y_true), 1)),
            "macro_f1": float(f1.mean()), "f1_per_class": f1.tolist(),
            "confusion_matrix": confusion.tolist(), "n": int(len(y_true))}


def evaluate_classifier(model: Any, texts: Sequence[str], labels: Sequence[str], *,
                        groups: Sequence[str] | str | None = None,
                        f1_of: Sequence[str] | None = None) -> dict[str, Any]:
    """Score a classifier (``model.labels`` and ``model.predict_logits(texts, strict=False)``,
    as :class:`~simtools.StudentClassifier` has) on labelled texts: :func:`score_predictions`
    plus ``labels`` and, with ``f1_of``, the mean F1 of those labels (TweetEval's official
    irony and stance scores are such means). ``groups`` (a group per text, or one for all)
    goes to a model of one student per group (:class:`~simtools.student.groups.GroupedStudents`),
    which needs it."""
    known = list(model.labels)
    index = {name: i for i, name in enumerate(known)}
    if not texts:
        raise InputError("no labelled texts to score")
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise InputError(f"it has labels the model does not know: {', '.join(unknown)}; the "
                         f"model knows {', '.join(known)}")
    missing = [name for name in (f1_of or ()) if name not in index]
    if f1_of is not None and (not f1_of or missing):
        raise InputError(f"f1_of must name labels of the model; {', '.join(missing) or 'none given'}"
                         f" not among {', '.join(known)}")
    y_true = np.array([index[name] for name in labels], dtype=np.int64)
    if groups is not None:
        logits = model.predict_logits(list(texts), groups, strict=False)
    else:
        logits = model.predict_logits(list(texts), strict=False)
    y_pred = logits.argmax(axis=1)
    scores = score_predictions(y_true, y_pred, len(known))
    scores["labels"] = known
    if f1_of:
        scores["f1_of"] = {"labels": list(f1_of), "mean_f1": float(np.mean(
            [scores["f1_per_class"][index[name]] for name in f1_of]))}
    return scores


# -- neighbour sets ---------------------------------------------------------------------------
def neighbour_recall(found: np.ndarray, truth: np.ndarray, k: int | None = None) -> float:
    """Mean fraction of the true top-``k`` neighbours found in the returned top-``k``, order
    ignored (ANN recall, or how well one embedding's k-NN reproduces another's).

    ``found`` and ``truth`` are ``(n_queries, >= k)`` arrays of positions; ``k`` defaults to
    ``truth``'s width. A ``-1`` (a missing neighbour) never counts as found."""
    found, truth = np.asarray(found), np.asarray(truth)
    k = k or truth.shape[1]
    hits = sum(len(set(f[f >= 0].tolist()) & set(t.tolist()))
               for f, t in zip(found[:, :k], truth[:, :k], strict=True))
    return hits / (truth.shape[0] * k)
