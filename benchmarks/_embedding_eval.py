"""Scores of an embedding against the teacher's, shared by the training script (on held-apart
validation texts) and ``benchmarks/embedding_fidelity.py`` (on the test texts).

- neighbour recall@10: the share of each text's 10 nearest neighbours (cosine, among the other
  texts) under the teacher that the candidate also puts in its 10 nearest;
- agreement: Pearson r between the candidate's and the teacher's cosine similarities over all
  pairs of a set of documents;
- known-item MRR@10 on the Wikipedia fragment: the queries of ``benchmarks/bench_retrieval.py``
  (held-out sentences of each article, as they are, without their rarest words, with words
  swapped), each searched among the articles by cosine; split by article into a validation
  and a test half by the same seeded draw.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

Embed = Callable[[list[str]], np.ndarray]
KINDS = ("heldout", "rare", "swapped")


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def top_k(queries: np.ndarray, docs: np.ndarray, k: int, *,
          exclude_self: bool = False) -> np.ndarray:
    """Positions of each query's ``k`` most cosine-similar docs, best first, int64 ``(nq, k)``.

    A zero vector (no direction) ranks below every other; ties go to the lower position.
    """
    q, d = _unit(queries), _unit(docs)
    out = np.empty((len(q), k), dtype=np.int64)
    for lo in range(0, len(q), 1024):
        sims = q[lo: lo + 1024] @ d.T
        sims[:, ~np.any(d != 0, axis=1)] = -2.0
        if exclude_self:
            rows = np.arange(lo, min(lo + 1024, len(q)))
            sims[rows - lo, rows] = -np.inf
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        out[lo: lo + 1024] = order
    return out


def neighbour_recall(candidate: np.ndarray, teacher: np.ndarray, k: int = 10) -> float:
    found = top_k(candidate, candidate, k, exclude_self=True)
    truth = top_k(teacher, teacher, k, exclude_self=True)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, truth, strict=True)]))


def agreement(candidate: np.ndarray, teacher: np.ndarray) -> float:
    """Pearson r of the pairwise cosine similarities (upper triangle)."""
    c, t = _unit(candidate), _unit(teacher)
    upper = np.triu_indices(len(c), k=1)
    return float(np.corrcoef((c @ c.T)[upper], (t @ t.T)[upper])[0, 1])


@functools.lru_cache(maxsize=1)
def wiki_known_item() -> dict[str, Any]:
    """The Wikipedia fragment's articles and known-item queries (bench_retrieval's task)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_retrieval import wiki_task

    return wiki_task(quick=False)


def known_item_mrr(embed_docs: Embed, embed_queries: Embed | None = None, *,
                   split: str) -> dict[str, float]:
    """MRR@10 of each query form of the ``split`` half ("val" or "test"), and their mean."""
    task = wiki_known_item()
    docs = embed_docs([d["text"] for d in task["docs"]])
    out: dict[str, float] = {}
    for kind in KINDS:
        chosen = [q for q in task["queries"] if q["split"] == split and q["kind"] == kind]
        vectors = (embed_queries or embed_docs)([q["text"] for q in chosen])
        ranked = top_k(vectors, docs, 10)
        ranks = [np.flatnonzero(row == q["target"]) for row, q in zip(ranked, chosen, strict=True)]
        out[kind] = float(np.mean([1.0 / (r[0] + 1) if len(r) else 0.0 for r in ranks]))
    out["mean"] = float(np.mean([out[k] for k in KINDS]))
    out["queries"] = float(sum(1 for q in task["queries"] if q["split"] == split))
    return out
