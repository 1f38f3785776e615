"""Exact (brute-force) search backends: dense vectors with BLAS, sparse vectors with scipy.

Dense search computes one block of scores at a time (a batch of queries against as much of
the database as ``BLOCK_BYTES`` allows: one ``sgemm``), keeps each block's top k with
``argpartition`` split over threads (NumPy releases the GIL there, and on two cores a
single-threaded pass over the block costs as much as the product), and merges blocks, so memory
stays bounded whatever the sizes. Sparse search never densifies the database: for inner
products the score block stays sparse and each row's top k is chosen among its non-zeros;
query batches run on threads, since scipy's sparse product releases the GIL. Measured against
numpy, scikit-learn and FAISS in benchmarks/bench_exact_dense.py and bench_exact_sparse.py.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..persistence import FormatError, load_arrays, save_arrays
from .backend import BackendKind, InnerMetric

__all__ = ["ExactDense", "ExactSparse", "topk"]

#: Upper bound on the bytes of one block of scores (1 GiB, like scikit-learn's default
#: working_memory): one block per query batch up to ~260k rows, no merging below that.
BLOCK_BYTES = 1 << 30
#: Below this many scores a block is selected on one thread (threads cost more than they save).
THREADED_SELECTION = 1 << 20

#: Sparse score blocks denser than this are selected as dense arrays.
DENSE_PRODUCT = 0.5

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="simtools-exact")
    return _POOL


def _topk_rows(scores: np.ndarray, k: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    n = scores.shape[1]
    if k < n:
        # kth = n - k selects the largest without a negated copy of the block.
        part = (np.argpartition(scores, n - k, axis=1)[:, n - k:] if largest
                else np.argpartition(scores, k - 1, axis=1)[:, :k])
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
    values = np.take_along_axis(scores, part, axis=1)
    # lexsort on (column, key) makes the order deterministic when scores tie.
    order = np.lexsort((part, -values if largest else values), axis=1)
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(part, order, axis=1)


def topk(scores: np.ndarray, k: int, *, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of every row of ``scores``, sorted best first.

    Returns ``(values, columns)``, each ``(rows, min(k, n_columns))``; ties go to the smaller
    column. Large blocks are split by rows over a thread pool.
    """
    k = min(k, scores.shape[1])
    threads = min(os.cpu_count() or 1, scores.shape[0])
    # Inside a pool worker (threaded sparse batches) stay on this thread: no nested waits.
    in_worker = threading.current_thread().name.startswith("simtools-exact")
    if scores.size < THREADED_SELECTION or threads < 2 or in_worker:
        return _topk_rows(scores, k, largest)
    cuts = np.linspace(0, scores.shape[0], threads + 1).astype(int)
    parts = list(_pool().map(lambda lo, hi: _topk_rows(scores[lo:hi], k, largest),
                             cuts[:-1], cuts[1:]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _merge(best: tuple[np.ndarray, np.ndarray] | None, scores: np.ndarray, columns: np.ndarray,
           k: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    if best is None:
        return scores, columns
    all_scores = np.concatenate([best[0], scores], axis=1)
    all_columns = np.concatenate([best[1], columns], axis=1)
    values, picked = _topk_rows(all_scores, k, largest)
    return values, np.take_along_axis(all_columns, picked, axis=1)


class _ExactBase:
    kind = BackendKind.EXACT

    def __init__(self, dim: int, inner_metric: InnerMetric | str = InnerMetric.IP) -> None:
        self._dim = int(dim)
        self.inner_metric = InnerMetric(inner_metric)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def _largest(self) -> bool:
        return self.inner_metric is InnerMetric.IP

    def _scores(self, Q: Any, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def _query_norms(self, Q: Any) -> np.ndarray:
        raise NotImplementedError

    def _exact_l2(self, Q: Any, positions: np.ndarray, partial: np.ndarray) -> np.ndarray:
        return np.maximum(partial + self._query_norms(Q)[:, None], 0)

    def __len__(self) -> int:
        raise NotImplementedError

    def _blocked_batch(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` of one query batch from dense score blocks over database chunks."""
        n = len(self)
        chunk = int(max(k, min(n, BLOCK_BYTES // (4 * Q.shape[0]))))
        best = None
        for cs in range(0, n, chunk):
            values, columns = topk(self._scores(Q, cs, min(n, cs + chunk)), k,
                                   largest=self._largest)
            best = _merge(best, values, columns + cs, k, self._largest)
        assert best is not None
        values, positions = best
        if not self._largest:  # l2: the blocks held ||x||^2 - 2 q.x; finish the distance
            values = self._exact_l2(Q, positions, values)
            order = np.lexsort((positions, values), axis=1)
            values = np.take_along_axis(values, order, axis=1)
            positions = np.take_along_axis(positions, order, axis=1)
        return values, positions

    def _search_batch(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self._blocked_batch(Q, k)

    #: Queries per batch, and whether batches run on the thread pool.
    _batch = 1024
    _threaded_batches = False

    def search(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows for each query: inner products, or squared L2 distances."""
        nq = Q.shape[0]
        k = min(k, len(self))
        out_scores = np.empty((nq, k), dtype=np.float32)
        out_positions = np.empty((nq, k), dtype=np.int64)

        def run(start: int) -> None:
            values, positions = self._search_batch(Q[start:start + self._batch], k)
            out_scores[start:start + self._batch] = values
            out_positions[start:start + self._batch] = positions

        starts = range(0, nq, self._batch)
        if self._threaded_batches and len(starts) > 1:
            list(_pool().map(run, starts))
        else:
            for start in starts:
                run(start)
        return out_scores, out_positions


class ExactDense(_ExactBase):
    """Dense float32 rows searched by blocked BLAS matrix products."""

    def __init__(self, dim: int, inner_metric: InnerMetric | str = InnerMetric.IP) -> None:
        super().__init__(dim, inner_metric)
        self._pending: list[np.ndarray] = []
        self._X = np.zeros((0, self._dim), dtype=np.float32)
        self._sq: np.ndarray | None = None

    @property
    def vectors(self) -> np.ndarray:
        """All stored rows, float32 ``(n, dim)``."""
        if self._pending:
            self._X = np.ascontiguousarray(np.concatenate([self._X, *self._pending]))
            self._pending = []
            self._sq = None
        return self._X

    def __len__(self) -> int:
        return self._X.shape[0] + sum(p.shape[0] for p in self._pending)

    def add(self, X: np.ndarray) -> None:
        self._pending.append(np.ascontiguousarray(X, dtype=np.float32))

    def remove(self, positions: np.ndarray) -> None:
        keep = np.ones(len(self), dtype=bool)
        keep[positions] = False
        self._X = np.ascontiguousarray(self.vectors[keep])
        self._sq = None

    def _scores(self, Q: np.ndarray, start: int, stop: int) -> np.ndarray:
        X = self.vectors[start:stop]
        dots = Q @ X.T
        if self._largest:
            return dots
        if self._sq is None:
            self._sq = np.einsum("ij,ij->i", self.vectors, self.vectors)
        dots *= -2
        dots += self._sq[start:stop]
        return dots

    def _query_norms(self, Q: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", Q, Q)

    def _exact_l2(self, Q: np.ndarray, positions: np.ndarray, partial: np.ndarray) -> np.ndarray:
        # The expanded form ||q||^2 - 2 q.x + ||x||^2 cancels badly for near neighbours; the
        # k winners are re-scored as ||q - x||^2 (ranks are kept: only rounding changes).
        diff = self.vectors[positions] - Q[:, None, :]
        return np.einsum("ijk,ijk->ij", diff, diff)

    def save(self, folder: Path) -> dict[str, Any]:
        np.save(folder / "vectors.npy", self.vectors, allow_pickle=False)
        return {"kind": self.kind.value, "inner_metric": self.inner_metric.value, "dim": self.dim}

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], *, mmap: bool = True) -> ExactDense:
        backend = cls(config["dim"], config["inner_metric"])
        path = folder / "vectors.npy"
        try:
            X = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except FileNotFoundError as e:
            raise FormatError(f"{path} is missing; the index folder is incomplete") from e
        except (ValueError, OSError) as e:
            raise FormatError(f"{path} is corrupted or truncated ({e}); rebuild the index") from e
        if X.ndim != 2 or X.shape[1] != backend.dim or X.dtype != np.float32:
            raise FormatError(f"{path} holds {X.dtype} {X.shape}, expected float32 (n, {backend.dim})")
        backend._X = X
        return backend


class ExactSparse(_ExactBase):
    """Sparse CSR rows searched by sparse-sparse products, never densified."""

    sparse = True
    _batch = 256
    _threaded_batches = True

    def search(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        self._transposed()  # build the shared caches once, before batches run on threads
        if not self._largest:
            self._row_sq()
        return super().search(Q, k)

    def _search_batch(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not self._largest:
            # Squared L2 needs every document's norm, overlap or not: dense score blocks.
            return self._blocked_batch(Q, k)
        # A product of canonical CSR matrices has no duplicate entries: no sum_duplicates()
        # (it would sort every row's indices, which costs more than the selection).
        P = (Q @ self._transposed()).tocsr()
        n = len(self)
        if P.nnz > DENSE_PRODUCT * P.shape[0] * n:
            # Long documents overlap with nearly all others: one dense pass over the block.
            # Negated keys with kth = k - 1: argpartition is slow at kth = n - k among many ties.
            values, positions = _topk_rows(-P.toarray(), k, False)
            return -values, positions
        values = np.zeros((Q.shape[0], k), dtype=np.float32)
        positions = np.empty((Q.shape[0], k), dtype=np.int64)
        for r in range(Q.shape[0]):
            lo, hi = P.indptr[r], P.indptr[r + 1]
            vals, cols = P.data[lo:hi], P.indices[lo:hi]
            positive = vals > 0
            if np.count_nonzero(positive) < k:
                # Too few positive scores: zeros and negatives compete, so use the whole row.
                row = np.zeros((1, n), dtype=np.float32)
                row[0, cols] = vals
                values[r], positions[r] = (a[0] for a in _topk_rows(row, k, True))
                continue
            vals, cols = vals[positive], cols[positive]
            if vals.size > k:
                kth = np.partition(vals, vals.size - k)[vals.size - k]
                keep = vals >= kth  # every tie at the k-th score stays a candidate
                vals, cols = vals[keep], cols[keep]
            order = np.lexsort((cols, -vals))[:k]
            values[r], positions[r] = vals[order], cols[order]
        return values, positions

    def __init__(self, dim: int, inner_metric: InnerMetric | str = InnerMetric.IP) -> None:
        import scipy.sparse as sp

        super().__init__(dim, inner_metric)
        self._pending: list[Any] = []
        self._X = sp.csr_matrix((0, self._dim), dtype=np.float32)
        self._XT: Any = None
        self._sq: np.ndarray | None = None

    @property
    def vectors(self) -> Any:
        """All stored rows, CSR float32 ``(n, dim)``."""
        import scipy.sparse as sp

        if self._pending:
            self._X = sp.vstack([self._X, *self._pending], format="csr", dtype=np.float32)
            self._pending = []
            self._XT = self._sq = None
        return self._X

    def __len__(self) -> int:
        return self._X.shape[0] + sum(p.shape[0] for p in self._pending)

    def add(self, X: Any) -> None:
        self._pending.append(X.tocsr().astype(np.float32))

    def remove(self, positions: np.ndarray) -> None:
        keep = np.ones(len(self), dtype=bool)
        keep[positions] = False
        self._X = self.vectors[keep]
        self._XT = self._sq = None

    def _transposed(self) -> Any:
        if self._XT is None:
            # Column-major copy of the database, made once: Q @ X.T is then CSR @ CSR.
            self._XT = self.vectors.T.tocsr()
            self._XT.sort_indices()
        return self._XT

    def _scores(self, Q: Any, start: int, stop: int) -> np.ndarray:
        XT = self._transposed()
        if start or stop != XT.shape[1]:
            XT = XT[:, start:stop]
        dots = (Q @ XT).toarray()
        if self._largest:
            return dots
        dots *= -2
        dots += self._row_sq()[start:stop]
        return dots

    def _row_sq(self) -> np.ndarray:
        if self._sq is None:
            X = self.vectors
            self._sq = np.asarray(X.multiply(X).sum(axis=1), dtype=np.float32).ravel()
        return self._sq

    def _query_norms(self, Q: Any) -> np.ndarray:
        return np.asarray(Q.multiply(Q).sum(axis=1), dtype=np.float32).ravel()

    def _exact_l2(self, Q: Any, positions: np.ndarray, partial: np.ndarray) -> np.ndarray:
        # As for dense rows: the expanded form cancels badly in float32 (a near duplicate of
        # norm 300 came out 0.25 away instead of 0.04), so the k winners are re-scored as
        # ||q - x||^2 from the sparse rows themselves, in float64.
        rows = np.repeat(np.arange(Q.shape[0]), positions.shape[1])
        diff = self.vectors[positions.ravel()].astype(np.float64) - Q[rows].astype(np.float64)
        return np.asarray(diff.multiply(diff).sum(axis=1)).reshape(positions.shape)

    def save(self, folder: Path) -> dict[str, Any]:
        X = self.vectors
        save_arrays(folder / "vectors.safetensors", {
            "data": X.data.astype(np.float32), "indices": X.indices.astype(np.int64),
            "indptr": X.indptr.astype(np.int64), "shape": np.asarray(X.shape, dtype=np.int64)})
        return {"kind": self.kind.value, "inner_metric": self.inner_metric.value, "dim": self.dim,
                "sparse": True}

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], *, mmap: bool = True) -> ExactSparse:
        import scipy.sparse as sp

        backend = cls(config["dim"], config["inner_metric"])
        arrays = load_arrays(folder / "vectors.safetensors")
        try:
            shape = tuple(int(s) for s in arrays["shape"])
            backend._X = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                                       shape=shape)
            backend._X.check_format(full_check=True)
        except (KeyError, ValueError, TypeError) as e:
            raise FormatError(f"{folder / 'vectors.safetensors'} is corrupted ({e}); rebuild the index") from e
        if shape[1] != backend.dim:
            raise FormatError(f"{folder} vectors have dimension {shape[1]}, config says {backend.dim}")
        return backend
