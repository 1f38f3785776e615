"""Exact dense search on the CPU: one BLAS product per cache-sized block, folded into a top k.

A batch of queries is scored against one block of documents at a time, small enough that the
block of scores stays in cache (``SCORE_BLOCK_BYTES``), and each block is folded into a
running top k before the next is scored, so the full queries x documents score matrix never
goes through memory. The fold reads the block once: the scores are computed transposed
(documents x queries), so the maximum of every ``GROUP`` consecutive documents for every
query is a reduction over long contiguous rows, at memory speed. Only the groups whose
maximum beats the query's running k-th best score are looked at again; after the first
blocks that is a few in a hundred.

Single queries and small batches are bound by reading the vectors, not by arithmetic: they
take one matrix-vector product per large block and the block-wise selection of
:mod:`simtools.index.topk`.

Results are those of a full stable sort of the float32 scores: ties go to the smaller
position. Measured against the sgemm bound, FAISS, NumPy and scikit-learn in
benchmarks/bench_exact_dense.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..persistence import FormatError, load_npy, member
from .backend import BackendKind, InnerMetric
from .topk import RunningTopK, topk_rows

__all__ = ["ExactDense", "fused_topk"]

#: Bytes of one block of scores (documents x queries) in the fused scan: small enough to stay
#: in this machine's caches between the product and the fold (benchmarks/bench_exact_dense.py).
SCORE_BLOCK_BYTES = 1 << 22
#: Queries scored together: the product runs near the sgemm peak from a few hundred on.
QUERY_BATCH = 1024
#: Batches of at most this many queries are scored by matrix-vector products over large
#: blocks instead (reading the vectors is what costs there).
SMALL_BATCH = 16
#: Bytes of one block of scores in the small-batch path.
SMALL_BLOCK_BYTES = 1 << 26
#: Documents per group whose maximum is taken in the fold.
GROUP = 32
#: Candidates per query that wait before a merge into the running top k.
MERGE_AFTER = 2


def fused_topk(X: np.ndarray, Q: np.ndarray, k: int, *,
               bias: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of ``Q @ X.T + bias`` per query (larger is better), exactly.

    ``X`` float32 ``(n, d)``, ``Q`` float32 ``(nq, d)``, ``bias`` float32 ``(n,)`` or None,
    ``k <= n``. Returns ``(scores, positions)``, each ``(nq, k)``, best first; equal scores
    are listed by position, and the smaller positions are kept at the k-th place.
    """
    nq = Q.shape[0]
    scores = np.empty((nq, k), dtype=np.float32)
    positions = np.empty((nq, k), dtype=np.int64)
    for start in range(0, nq, QUERY_BATCH):
        batch = Q[start:start + QUERY_BATCH]
        scan = _scan_small if batch.shape[0] <= SMALL_BATCH else _scan_blocks
        best = scan(X, batch, k, bias)
        scores[start:start + len(batch)] = best.values
        positions[start:start + len(batch)] = best.columns
    return scores, positions


def _scan_small(X: np.ndarray, Q: np.ndarray, k: int, bias: np.ndarray | None) -> RunningTopK:
    """A few queries: one product per large block, then the block-wise row selection."""
    n, nq = X.shape[0], Q.shape[0]
    best = RunningTopK(nq, k)
    chunk = max(k, SMALL_BLOCK_BYTES // (4 * nq))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        block = Q @ X[start:stop].T
        if bias is not None:
            block += bias[start:stop]
        values, columns = topk_rows(block, min(k, stop - start), True)
        rows = np.repeat(np.arange(nq), values.shape[1])
        best.fold(rows, values.ravel(), columns.ravel() + start)
    return best


def _scan_blocks(X: np.ndarray, Q: np.ndarray, k: int, bias: np.ndarray | None) -> RunningTopK:
    """A batch of queries against cache-sized blocks of documents, each folded in turn.

    Candidates wait until there are about ``MERGE_AFTER`` per query before they are merged
    into the running top k (a merge costs the same few dozen NumPy calls however few they
    are); meanwhile the blocks are filtered by the thresholds of the last merge, which are
    only lower, so nothing is missed.
    """
    n, nq = X.shape[0], Q.shape[0]
    best = RunningTopK(nq, k)
    rows = max(GROUP * max(k, 8), SCORE_BLOCK_BYTES // (4 * nq) // GROUP * GROUP)
    buffer = np.empty((min(rows, n), nq), dtype=np.float32)
    pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    waiting = 0
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        block = np.matmul(X[start:stop], Q.T, out=buffer[: stop - start])
        if bias is not None:
            block += bias[start:stop, None]
        found = _candidates(best, block, start, first=start == 0)
        pending.append(found)
        waiting += found[0].size
        if waiting >= MERGE_AFTER * nq or start == 0 or stop == n:
            best.fold(*(np.concatenate(part) for part in zip(*pending)))
            pending, waiting = [], 0
    return best


def _candidates(best: RunningTopK, block: np.ndarray, start: int, *, first: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(queries, scores, columns)`` of a ``(documents, queries)`` block of scores (its first
    row is document ``start``) that may enter the top k: those above ``best``'s thresholds."""
    size, nq = block.shape
    groups = size // GROUP
    body = block[: groups * GROUP].reshape(groups, GROUP, nq)
    if first and groups < best.k:
        # Too few groups to bound the k-th best: every score is a candidate.
        docs, queries = np.nonzero(np.ones_like(block, dtype=bool))
        return queries, block[docs, queries], docs + start
    peaks = body.max(axis=1)  # (groups, queries): contiguous rows, one pass at memory speed
    if first:
        # The k-th best group peak is a score that k others reach or beat: a safe floor.
        floor = np.partition(peaks, groups - best.k, axis=0)[groups - best.k]
        hits = np.flatnonzero(peaks >= floor)
    else:
        floor = best.threshold
        hits = np.flatnonzero(peaks > floor)
    # Flat indices throughout: 2-d nonzero() and mixed fancy indexing cost twice as much.
    hit_groups, hit_queries = np.divmod(hits, nq)
    first_rows = hits + hit_groups * ((GROUP - 1) * nq)  # each hit group's first score
    values = block.reshape(-1)[first_rows[:, None] + np.arange(0, GROUP * nq, nq)]
    bar = floor[hit_queries][:, None]
    picked = np.flatnonzero(values >= bar if first else values > bar)
    pick, offset = np.divmod(picked, GROUP)
    queries = hit_queries[pick]
    scores = values.reshape(-1)[picked]
    columns = start + hit_groups[pick] * GROUP + offset
    if groups * GROUP < size:  # the short last group of the last block
        tail = block[groups * GROUP:]
        docs, tail_queries = np.nonzero(tail >= floor if first else tail > floor)
        queries = np.concatenate([queries, tail_queries])
        scores = np.concatenate([scores, tail[docs, tail_queries]])
        columns = np.concatenate([columns, start + groups * GROUP + docs])
    return queries, scores, columns


class ExactDense:
    """Dense float32 rows searched exactly by the fused scan of :func:`fused_topk`."""

    kind = BackendKind.EXACT

    def __init__(self, dim: int, inner_metric: InnerMetric | str = InnerMetric.IP) -> None:
        self._dim = int(dim)
        self.inner_metric = InnerMetric(inner_metric)
        self._pending: list[np.ndarray] = []
        self._X = np.zeros((0, self._dim), dtype=np.float32)
        self._bias: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def vectors(self) -> np.ndarray:
        """All stored rows, float32 ``(n, dim)``."""
        if self._pending:
            self._X = np.ascontiguousarray(np.concatenate([self._X, *self._pending]))
            self._pending = []
            self._changed()
        return self._X

    def _changed(self) -> None:
        """The rows changed: drop what was derived from them."""
        self._bias = None

    def __len__(self) -> int:
        return self._X.shape[0] + sum(p.shape[0] for p in self._pending)

    def add(self, X: np.ndarray) -> None:
        self._pending.append(np.ascontiguousarray(X, dtype=np.float32))

    def remove(self, positions: np.ndarray) -> None:
        keep = np.ones(len(self), dtype=bool)
        keep[positions] = False
        self._X = np.ascontiguousarray(self.vectors[keep])
        self._changed()

    def release_buffer(self) -> None:
        """Nothing to free: score blocks are cache-sized and live for one search only."""

    def l2_bias(self) -> np.ndarray:
        """``-||x||^2 / 2`` per row: squared L2 ranks as ``q.x - ||x||^2 / 2``, larger first."""
        X = self.vectors
        if self._bias is None:
            self._bias = np.einsum("ij,ij->i", X, X) * np.float32(-0.5)
        return self._bias

    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows for each query: inner products, or squared L2 distances."""
        X = self.vectors
        k = min(k, len(self))
        if self.inner_metric is InnerMetric.IP:
            return fused_topk(X, Q, k)
        partial, positions = fused_topk(X, Q, k, bias=self.l2_bias())
        return self.finish_l2(Q, partial, positions)

    def finish_l2(self, Q: np.ndarray, partial: np.ndarray, positions: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
        """Squared distances of the winners of ``q.x - ||x||^2 / 2``, in ascending order.

        The expanded form cancels badly for near neighbours; the k winners are re-scored as
        ``||q - x||^2`` (ranks are kept: only rounding changes).
        """
        del partial  # the ranking is kept; the scores are recomputed
        diff = self.vectors[positions] - Q[:, None, :]
        values = np.einsum("ijk,ijk->ij", diff, diff)
        order = np.lexsort((positions, values), axis=1)
        return np.take_along_axis(values, order, axis=1), np.take_along_axis(positions, order, axis=1)

    def save(self, folder: Path) -> dict[str, Any]:
        np.save(folder / "vectors.npy", self.vectors, allow_pickle=False)
        return {"kind": self.kind.value, "inner_metric": self.inner_metric.value, "dim": self.dim}

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], *, mmap: bool = True) -> ExactDense:
        backend = cls(config["dim"], config["inner_metric"])
        path = member(folder, "vectors.npy")
        X = load_npy(path, mmap=mmap)
        if X.ndim != 2 or X.shape[1] != backend.dim or X.dtype != np.float32:
            raise FormatError(f"{path} holds {X.dtype} {X.shape}, expected float32 (n, {backend.dim})")
        backend._X = X
        return backend
