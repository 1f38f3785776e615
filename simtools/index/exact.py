"""Exact (brute-force) search backends: dense vectors with BLAS, sparse vectors with scipy.

Dense search (:class:`ExactDense`, from :mod:`simtools.index.exact_dense`) scores cache-sized
blocks with BLAS and folds each into a running top k. The torch variant for a GPU is in
:mod:`simtools.index.torch_exact`.

Sparse search never densifies the database. A batch of short queries keeps its product sparse
and picks each row's top k among its non-zeros, batches running on threads. When most scores
would be non-zero anyway (long documents share their common words), the batch is scored into a
dense block: the frequent terms through one BLAS product over a dense copy of their columns,
the rest through a sparse product written straight into the block.

Measured against numpy, scikit-learn and FAISS in benchmarks/bench_exact_dense.py and
bench_exact_sparse.py.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..persistence import FormatError, load_arrays, member, save_arrays
from .backend import BackendKind, InnerMetric
from .exact_dense import ExactDense
from .topk import merge_topk, pool, topk, topk_rows

__all__ = ["ExactDense", "ExactSparse"]

#: Upper bound on the bytes of one block of sparse search's scores (1 GiB, like
#: scikit-learn's default working_memory): one block per query batch up to ~260k rows.
BLOCK_BYTES = 1 << 30
#: Query batches whose sparse product would touch more than this share of the score block
#: (estimated from the terms' document frequencies) are scored into a dense block.
DENSE_PRODUCT = 0.5
#: In a dense score block, terms found in more than this share of the documents are scored by
#: one BLAS product over a dense copy of their columns, the rest by a sparse product.
FREQUENT_TERMS = 0.08
#: Upper bound on the bytes of that dense copy (the most frequent terms are kept first).
FREQUENT_BYTES = 1 << 28

def _sparse_product_dense(A: Any, B: Any) -> np.ndarray:
    """``A @ B`` for CSR float32 ``A`` and ``B``, written straight into a dense array.

    scikit-learn >= 1.7 has a kernel for this that skips scipy's sparse result (two passes and
    a sorted index per row); older versions go through scipy.
    """
    try:
        from sklearn.utils.sparsefuncs import sparse_matmul_to_dense
    except ImportError:
        sparse_matmul_to_dense = None
    if sparse_matmul_to_dense is None or A.dtype != np.float32 or B.dtype != np.float32:
        return np.asarray((A @ B).toarray(), dtype=np.float32)
    return sparse_matmul_to_dense(A.tocsr(), B.tocsr())


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

    def _scores(self, Q: Any, start: int, stop: int, *, out: np.ndarray | None = None
                ) -> np.ndarray:
        """Scores of the queries against rows start:stop (into ``out`` where the backend can)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _score_buffer(self, size: int) -> Iterator[np.ndarray]:
        """Room for ``size`` float32 scores, shared by all the blocks of one batch."""
        yield np.empty(size, dtype=np.float32)

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
        with self._score_buffer(Q.shape[0] * chunk) as buffer:
            for cs in range(0, n, chunk):
                stop = min(n, cs + chunk)
                out = buffer[: Q.shape[0] * (stop - cs)].reshape(Q.shape[0], stop - cs)
                values, columns = topk(self._scores(Q, cs, stop, out=out), k,
                                       largest=self._largest)
                best = merge_topk(best, values, columns + cs, k, self._largest)
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
            list(pool().map(run, starts))
        else:
            for start in starts:
                run(start)
        return out_scores, out_positions


class ExactSparse(_ExactBase):
    """Sparse CSR rows searched by sparse products; the database is never densified whole.

    A batch of short queries (tweets) keeps its product sparse and picks each row's top k among
    its non-zeros. When most scores are non-zero anyway (long documents share their common
    words), the batch is scored into a dense block in two parts: the frequent terms through
    one BLAS product over a dense copy of their columns (bounded by ``FREQUENT_BYTES``), the
    rare terms through a sparse product. Both parts are exact.
    """

    sparse = True
    _batch = 256
    _threaded_batches = True

    def search(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        # Build the shared caches once, before batches run on threads.
        self._transposed()
        if not Q.has_canonical_format:
            Q = Q.copy()
            Q.sum_duplicates()
        if self._largest and self._dense_product(Q):
            return self._dense_search(Q, k)
        if not self._largest:
            self._row_sq()
        return super().search(Q, k)

    def _search_batch(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        if not self._largest:
            # Squared L2 needs every document's norm, overlap or not: dense score blocks.
            return self._blocked_batch(Q, k)
        n = len(self)
        if self._dense_product(Q):
            return self._dense_search(Q, k)
        # A product of canonical CSR matrices has no duplicate entries: no sum_duplicates()
        # (it would sort every row's indices, which costs more than the selection).
        P = (Q @ self._transposed()).tocsr()
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
                values[r], positions[r] = (a[0] for a in topk_rows(row, k, True))
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
        self._split: tuple[Any, np.ndarray, Any] | None = None
        self._split_lock = threading.Lock()

    def _invalidate(self) -> None:
        self._XT = self._sq = self._split = None

    @property
    def vectors(self) -> Any:
        """All stored rows, CSR float32 ``(n, dim)``."""
        import scipy.sparse as sp

        if self._pending:
            self._X = sp.vstack([self._X, *self._pending], format="csr", dtype=np.float32)
            self._pending = []
            self._invalidate()
        return self._X

    def __len__(self) -> int:
        return self._X.shape[0] + sum(p.shape[0] for p in self._pending)

    def add(self, X: Any) -> None:
        self._pending.append(X.tocsr().astype(np.float32))

    def remove(self, positions: np.ndarray) -> None:
        keep = np.ones(len(self), dtype=bool)
        keep[positions] = False
        self._X = self.vectors[keep]
        self._invalidate()

    def _transposed(self) -> Any:
        if self._XT is None:
            # Column-major copy of the database, made once: Q @ X.T is then CSR @ CSR.
            self._XT = self.vectors.T.tocsr()
            self._XT.sort_indices()
        return self._XT

    def _dense_product(self, Q: Any) -> bool:
        """Whether most of ``Q @ X.T`` would be non-zero: its multiply-adds (an upper bound on
        its non-zeros) exceed ``DENSE_PRODUCT`` of its size."""
        work = int(np.diff(self._transposed().indptr)[Q.indices].sum())
        return work > DENSE_PRODUCT * Q.shape[0] * len(self)

    def _dense_search(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product top k through dense score blocks, one query batch at a time: the
        BLAS product and the selection use every core, so batches do not run on threads."""
        rows = int(max(1, BLOCK_BYTES // (4 * len(self))))
        values, positions = [], []
        for start in range(0, Q.shape[0], rows):
            # Negated keys with kth = k - 1: argpartition is slow at kth = n - k among ties.
            scores = self._dense_scores(Q[start:start + rows])
            v, p = topk(np.negative(scores, out=scores), k, largest=False)
            values.append(-v)
            positions.append(p)
        return np.concatenate(values), np.concatenate(positions)

    def _frequent_split(self) -> tuple[Any, np.ndarray, Any]:
        """``(select, XF, XT_rare)``: a CSR ``(terms, n_frequent)`` 0/1 matrix that picks the
        frequent terms' columns, those columns of the database as dense float32
        ``(n, n_frequent)``, and the transposed database with the frequent terms' rows emptied. Made once per database, on first need
        (the lock keeps threaded batches from building it twice)."""
        with self._split_lock:
            if self._split is None:
                self._split = self._make_split()
            return self._split

    def _make_split(self) -> tuple[Any, np.ndarray, Any]:
        import scipy.sparse as sp

        XT = self._transposed()
        n = XT.shape[1]
        df = np.diff(XT.indptr)
        budget = FREQUENT_BYTES // (4 * max(n, 1))
        frequent = np.flatnonzero(df > FREQUENT_TERMS * n)
        frequent = np.sort(frequent[np.argsort(-df[frequent], kind="stable")][:budget])
        select = sp.csr_matrix((np.ones(frequent.size, dtype=np.float32),
                                (frequent, np.arange(frequent.size))),
                               shape=(XT.shape[0], frequent.size))
        XF = np.ascontiguousarray(XT[frequent].toarray().T, dtype=np.float32)
        rare = np.ones(XT.shape[0], dtype=np.float32)
        rare[frequent] = 0
        XT_rare = (sp.diags(rare, format="csr") @ XT).tocsr()
        XT_rare.eliminate_zeros()
        return select, XF, XT_rare

    def _dense_scores(self, Q: Any) -> np.ndarray:
        """Inner products of canonical CSR queries with every row, as a dense float32 block."""
        select, XF, XT_rare = self._frequent_split()
        scores = _sparse_product_dense(Q, XT_rare)  # frequent terms have empty rows here
        if XF.shape[1]:
            from scipy.linalg.blas import sgemm

            QF = _sparse_product_dense(Q, select)  # the queries' frequent-term columns
            # scores.T (Fortran order) += XF @ QF.T, in place: no second block and no add pass
            out = sgemm(1.0, XF.T, QF.T, beta=1.0, c=scores.T, trans_a=True, overwrite_c=True)
            if not np.shares_memory(out, scores):
                scores = np.ascontiguousarray(out.T)
        return scores

    def _scores(self, Q: Any, start: int, stop: int, *, out: np.ndarray | None = None
                ) -> np.ndarray:
        XT = self._transposed()
        if start == 0 and stop == XT.shape[1]:
            dots = self._dense_scores(Q)
        else:
            dots = (Q @ XT[:, start:stop]).toarray()
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
        arrays = load_arrays(member(folder, "vectors.safetensors"))
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
