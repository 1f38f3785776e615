"""Exact dense search on a torch device (a GPU), with results equal to the CPU's.

The vectors are copied to the device once (float32, float16 or bfloat16: ``dtype``); each
batch of queries is scored there by blocked matrix products, and ``torch.topk`` keeps a few
more candidates than asked for. The candidates are then re-scored in float32 from the float32
rows kept in host memory (the same rows :class:`~simtools.index.exact_dense.ExactDense`
searches and saves), ranked with ties to the smaller position, and *certified*: a query's
answer stands only if its k-th score beats the best score any non-candidate could have,
``lowest candidate's device score + error bound``. The bound is the rounding of the device's
arithmetic (storage dtype, float32 accumulation, output dtype) and of the re-scoring, from
the query's norm and the largest row norm. Queries that fail are searched again with four
times the candidates, up to every row. So float16 never changes a result, only the speed.

On a CUDA device the search turns off cuBLAS's reduced-precision reductions for the duration
of each product (the bound assumes float32 accumulation). A folder saved from this backend is
an ordinary ``exact`` folder. torch is imported only here (the ``train`` extra).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import InputError
from .backend import InnerMetric
from .device import import_torch
from .exact_dense import ExactDense

__all__ = ["DTYPES", "GPU_DEVICE", "TorchExactDense"]

#: Storage dtypes and their unit roundoff (bfloat16 keeps 8 bits of mantissa, float16 11).
DTYPES = {"float32": 2.0 ** -24, "float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}
#: The torch device that ``device='cuda'`` means (tests point it at the CPU).
GPU_DEVICE = "cuda"
#: Queries per device batch, and the bytes of one block of device scores.
QUERY_BATCH = 8192
BLOCK_BYTES = 1 << 30
#: Candidates beyond k kept on the first try (4x more on each retry of uncertified queries).
EXTRA_CANDIDATES = 16
#: Largest score float16 can hold, with room for rounding.
_FLOAT16_LIMIT = 6.0e4
_U32 = 2.0 ** -24


class TorchExactDense(ExactDense):
    """:class:`ExactDense` whose search runs on a torch ``device`` (``"cuda"``, ``"cpu"``).

    ``dtype`` is how the device holds the vectors: ``"float32"``, ``"float16"`` (half the
    device memory) or ``"bfloat16"``; results are the same for all three (see the module).
    """

    def __init__(self, dim: int, inner_metric: InnerMetric | str = InnerMetric.IP, *,
                 device: str = GPU_DEVICE, dtype: str = "float32") -> None:
        super().__init__(dim, inner_metric)
        if dtype not in DTYPES:
            raise InputError(f"unknown dtype {dtype!r}; valid values are "
                             f"{', '.join(repr(d) for d in DTYPES)}")
        self.device = device
        self.dtype = dtype
        self._copy: tuple[Any, Any, float] | None = None  # (rows, bias or None, largest norm)

    @classmethod
    def from_host(cls, host: ExactDense, *, device: str = GPU_DEVICE,
                  dtype: str = "float32") -> TorchExactDense:
        """The same rows (shared, not copied in host memory) searched on ``device``."""
        backend = cls(host.dim, host.inner_metric, device=device, dtype=dtype)
        backend._X = host.vectors
        return backend

    def _changed(self) -> None:
        super()._changed()
        self._copy = None

    # -- the device copy --------------------------------------------------------------------
    def to_device(self) -> float:
        """Copy the rows to the device now (otherwise the first search does); returns seconds."""
        started = time.perf_counter()
        self._device_copy()
        return time.perf_counter() - started

    def device_rows(self) -> Any:
        """The rows as a tensor on the device (copied there on first use, after any change)."""
        return self._device_copy()[0]

    def _device_copy(self) -> tuple[Any, Any, float]:
        if self._copy is None:
            torch = import_torch()
            X = self.vectors
            self._check_memory(torch, X.shape[0])
            rows = torch.from_numpy(np.ascontiguousarray(X)).to(self.device,
                                                               getattr(torch, self.dtype))
            bias = None
            if self.inner_metric is InnerMetric.L2:
                bias = torch.from_numpy(self.l2_bias()).to(self.device)
            norms = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64)) if len(X) else [0.0]
            largest = float(np.max(norms))
            if self.dtype == "float16" and largest >= _FLOAT16_LIMIT:
                raise InputError(f"a vector of norm {largest:.3g} does not fit in float16 "
                                 "(at most 65504); use dtype='bfloat16' or dtype='float32'")
            self._copy = (rows, bias, largest)
        return self._copy

    def _check_memory(self, torch: Any, n: int) -> None:
        """An index the device cannot hold is an error with its size, before any copy."""
        free = free_memory(torch, self.device)
        if free is None:
            return
        itemsize = 4 if self.dtype == "float32" else 2
        need = n * self.dim * itemsize + n * 4 + 2 * BLOCK_BYTES
        if need > free:
            raise InputError(
                f"the index needs {need / 2**30:.1f} GiB on {self.device} ({n:,} vectors of "
                f"dimension {self.dim} in {self.dtype}, plus score blocks) but "
                f"{free / 2**30:.1f} GiB are free; use dtype='float16' (half the memory), "
                "device='cpu', or split the index into shards")

    # -- searching --------------------------------------------------------------------------
    def search(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows for each query: inner products, or squared L2 distances."""
        k = min(k, len(self))
        nq = Q.shape[0]
        scores = np.empty((nq, k), dtype=np.float32)
        positions = np.empty((nq, k), dtype=np.int64)
        for start in range(0, nq, QUERY_BATCH):
            stop = min(nq, start + QUERY_BATCH)
            scores[start:stop], positions[start:stop] = self._search_batch(Q[start:stop], k)
        if self.inner_metric is InnerMetric.L2:
            return self.finish_l2(Q, scores, positions)
        return scores, positions

    def _search_batch(self, Q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        bound = self._error_bound(Q)
        scores = np.empty((Q.shape[0], k), dtype=np.float32)
        positions = np.empty((Q.shape[0], k), dtype=np.int64)
        todo = np.arange(Q.shape[0])
        wanted = min(n, k + EXTRA_CANDIDATES)
        while todo.size:
            device_scores, candidates = self._candidates(Q[todo], wanted)
            final = self._rescore(Q[todo], candidates, device_scores)
            order = np.lexsort((candidates, -final), axis=1)[:, :k]
            values = np.take_along_axis(final, order, axis=1)
            found = np.take_along_axis(candidates, order, axis=1)
            if wanted >= n:
                sure = np.ones(todo.size, dtype=bool)
            else:  # no row outside the candidates can reach (or tie) the k-th score
                sure = values[:, k - 1] > device_scores[:, -1] + bound[todo]
            scores[todo[sure]], positions[todo[sure]] = values[sure], found[sure]
            todo = todo[~sure]
            wanted = min(n, wanted * 4)
        return scores, positions

    def _exact_products(self) -> bool:
        """Whether the device's scores are plain float32 arithmetic (nothing to re-score)."""
        if self.dtype != "float32":
            return False
        if not str(self.device).startswith("cuda"):
            return True
        torch = import_torch()
        return (torch.get_float32_matmul_precision() == "highest"
                and not torch.backends.cuda.matmul.allow_tf32)

    def _error_bound(self, Q: np.ndarray) -> np.ndarray:
        """Per query, how far a device score may be from the float32 re-score of that row."""
        _, _, largest = self._device_copy()
        q = np.sqrt(np.einsum("ij,ij->i", Q, Q, dtype=np.float64))
        if self.dtype == "float16" and float(q.max(initial=0.0)) * largest >= _FLOAT16_LIMIT:
            raise InputError("float16 scores would overflow for these queries (norm up to "
                             f"{float(q.max()):.3g}); use dtype='bfloat16' or dtype='float32'")
        if self._exact_products():
            return np.zeros(len(Q))
        u = DTYPES[self.dtype] if self.dtype != "float32" else _tf32_roundoff()
        d = self.dim
        accumulate = d * _U32 / (1 - d * _U32)  # float32 sums of d products, on both sides
        relative = 2 * u + u * u + u + 2 * accumulate
        tiny = math.sqrt(d) * 2.0 ** -24 * (q + largest)  # float16 subnormals
        bound = q * largest * relative + tiny
        if self.inner_metric is InnerMetric.L2:  # the -||x||^2/2 terms, added in float32
            bound += 4 * _U32 * (q * largest + 0.5 * largest * largest)
        return 2 * bound  # a factor of 2 to spare

    def _candidates(self, Q: np.ndarray, wanted: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``wanted`` best rows by device scores: ``(scores, positions)``, best first."""
        torch = import_torch()
        rows, bias, _ = self._device_copy()
        n = rows.shape[0]
        queries = torch.from_numpy(np.ascontiguousarray(Q)).to(self.device, rows.dtype)
        block = max(wanted, BLOCK_BYTES // (4 * max(1, len(Q))))
        best: tuple[Any, Any] | None = None
        with torch.no_grad(), _float32_reductions(torch, self.device):
            for start in range(0, n, block):
                stop = min(n, start + block)
                scores = (queries @ rows[start:stop].T).float()
                if bias is not None:
                    scores += bias[start:stop]
                values, where = torch.topk(scores, min(wanted, stop - start), dim=1)
                where += start
                if best is not None:
                    values, picked = torch.topk(torch.cat([best[0], values], 1), wanted, dim=1)
                    where = torch.gather(torch.cat([best[1], where], 1), 1, picked)
                best = (values, where)
        assert best is not None
        return best[0].cpu().numpy(), best[1].cpu().numpy()

    def _rescore(self, Q: np.ndarray, candidates: np.ndarray, device_scores: np.ndarray
                 ) -> np.ndarray:
        """Float32 scores of the candidate rows, from the rows in host memory."""
        if self._exact_products():
            return device_scores
        X = self.vectors
        final = np.empty(candidates.shape, dtype=np.float32)
        for start in range(0, len(Q), 1024):  # a bounded gather of candidate rows
            part = candidates[start:start + 1024]
            final[start:start + 1024] = np.einsum("ij,ikj->ik", Q[start:start + 1024], X[part])
        if self.inner_metric is InnerMetric.L2:
            final += self.l2_bias()[candidates]
        return final


def free_memory(torch: Any, device: str) -> int | None:
    """Free bytes on a CUDA ``device``; None for the CPU (not checked)."""
    if not str(device).startswith("cuda"):
        return None
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def _tf32_roundoff() -> float:
    """Unit roundoff of float32 products under torch's matmul precision setting."""
    precision = import_torch().get_float32_matmul_precision()
    return {"highest": 2.0 ** -11, "high": 2.0 ** -11}.get(precision, 2.0 ** -8)


@contextlib.contextmanager
def _float32_reductions(torch: Any, device: str) -> Iterator[None]:
    """Float32 accumulation in half-precision cuBLAS products while the block runs."""
    if not str(device).startswith("cuda"):
        yield
        return
    flags = torch.backends.cuda.matmul
    names = [name for name in ("allow_fp16_reduced_precision_reduction",
                               "allow_bf16_reduced_precision_reduction") if hasattr(flags, name)]
    saved = {name: getattr(flags, name) for name in names}
    try:
        for name in names:
            setattr(flags, name, False)
        yield
    finally:
        for name, value in saved.items():
            setattr(flags, name, value)
