"""Exact (brute-force) search backends: dense vectors with BLAS, sparse vectors with scipy.

Both compute one block of scores at a time (a batch of queries against a chunk of the
database), keep each block's top k with ``argpartition`` and merge, so memory stays bounded
(about ``BLOCK_BYTES``) whatever the sizes. Dense search is one ``sgemm`` per block: on two
cores that beat FAISS ``IndexFlat`` (see benchmarks/bench_exact_dense.py). Sparse search never
densifies the database; only the score block is dense.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..persistence import FormatError, load_arrays, save_arrays
from .backend import BackendKind, InnerMetric

__all__ = ["ExactDense", "ExactSparse", "topk"]

#: Upper bound on the bytes of one block of scores.
BLOCK_BYTES = 1 << 27


def topk(scores: np.ndarray, k: int, *, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of every row of ``scores``, sorted best first.

    Returns ``(values, columns)``, each ``(rows, k)``; ties are broken by the smaller column.
    """
    n = scores.shape[1]
    k = min(k, n)
    keyed = -scores if largest else scores
    if k < n:
        part = np.argpartition(keyed, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
    part_keys = np.take_along_axis(keyed, part, axis=1)
    # lexsort on (column, key) makes the order deterministic when scores tie.
    order = np.lexsort((part, part_keys), axis=1)
    columns = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(scores, columns, axis=1), columns


def _merge(best: tuple[np.ndarray, np.ndarray] | None, scores: np.ndarray, columns: np.ndarray,
           k: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    if best is None:
        return scores, columns
    all_scores = np.concatenate([best[0], scores], axis=1)
    all_columns = np.concatenate([best[1], columns], axis=1)
    values, picked = topk(all_scores, k, largest=largest)
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

    def search(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows for each query: inner products, or squared L2 distances."""
        n = len(self)
        nq = Q.shape[0]
        k = min(k, n)
        out_scores = np.empty((nq, k), dtype=np.float32)
        out_positions = np.empty((nq, k), dtype=np.int64)
        # Queries in batches, the database in chunks: each score block <= BLOCK_BYTES.
        batch = int(min(nq, 1024))
        chunk = int(max(k, min(n, BLOCK_BYTES // (4 * batch))))
        for qs in range(0, nq, batch):
            Qb = Q[qs:qs + batch]
            best = None
            for cs in range(0, n, chunk):
                block = self._scores(Qb, cs, min(n, cs + chunk))
                values, columns = topk(block, k, largest=self._largest)
                best = _merge(best, values, columns + cs, k, self._largest)
            assert best is not None
            values, positions = best
            if not self._largest:  # l2: the blocks held ||x||^2 - 2 q.x; add ||q||^2 back
                values = self._exact_l2(Qb, positions, values)
                order = np.lexsort((positions, values), axis=1)
                values = np.take_along_axis(values, order, axis=1)
                positions = np.take_along_axis(positions, order, axis=1)
            out_scores[qs:qs + batch] = values
            out_positions[qs:qs + batch] = positions
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
    """Sparse CSR rows searched by sparse-sparse products; only score blocks are dense."""

    sparse = True

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
        if self._sq is None:
            X = self.vectors
            self._sq = np.asarray(X.multiply(X).sum(axis=1), dtype=np.float32).ravel()
        dots *= -2
        dots += self._sq[start:stop]
        return dots

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
