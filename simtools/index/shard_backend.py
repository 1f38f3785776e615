"""The backend of a sharded index: consecutive runs of ``shard_size`` rows, each an ordinary
backend, searched together (see :mod:`simtools.index.sharded`, which holds the index itself).

A search runs every shard on a thread pool of its own (a shard's exact search uses
:func:`~simtools.index.topk.pool` inside, and a pool whose threads wait on that same pool could
wait for ever) and merges their top ``k`` exactly: by score, then by global position.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .backend import Backend, BackendKind, InnerMetric
from .backends import make_backend, move_backend
from .device import Device
from .shards_store import ShardRecord
from .topk import sparse_products

__all__ = ["DEFAULT_SHARD_SIZE", "ShardedBackend", "check_shard_size", "merge_topk_shards"]

#: Documents per shard unless told: a checkpoint rewrites at most one shard of this size
#: (about 150 MB for 384-d dense vectors, 100-400 MB for sparse ones), and an index below it
#: is saved as one folder, as before shards existed.
DEFAULT_SHARD_SIZE = 100_000

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="simtools-shard")
    return _POOL


def check_shard_size(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"shard_size must be a positive number of documents, got {value!r}")
    return int(value)


def merge_topk_shards(parts: list[tuple[np.ndarray, np.ndarray]], offsets: list[int], k: int,
                      largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of several shards' ``(scores, local positions)``, by score and then by
    global position (``offsets[i]`` + local); a missing neighbour (-1) comes last."""
    scores = np.concatenate([p[0] for p in parts], axis=1).astype(np.float32, copy=False)
    positions = np.concatenate(
        [np.where(p[1] >= 0, p[1] + off, -1) for p, off in zip(parts, offsets)], axis=1)
    missing = positions < 0
    key = np.where(missing, np.inf, -scores if largest else scores)
    tie = np.where(missing, np.iinfo(np.int64).max, positions)
    order = np.lexsort((tie, key), axis=1)[:, :k]
    return (np.take_along_axis(scores, order, axis=1),
            np.take_along_axis(positions, order, axis=1))


class ShardedBackend:
    """The :class:`~simtools.index.backend.Backend` protocol over shards of consecutive rows."""

    def __init__(self, kind: BackendKind, dim: int, inner_metric: InnerMetric, sparse: bool,
                 options: dict[str, Any], shard_size: int,
                 shards: list[Backend] | None = None, *, device: Device | str = Device.AUTO,
                 dtype: str = "float32") -> None:
        self.kind = kind
        self.device, self.dtype = Device(device), dtype
        self.inner_metric = inner_metric
        self.sparse = sparse
        self.options = options
        self.shard_size = check_shard_size(shard_size)
        self._dim = int(dim)
        self.shards: list[Backend] = list(shards or [])
        #: per shard: the folder it was last saved as (None: never, or changed since)
        self.saved: list[ShardRecord | None] = [None] * len(self.shards)
        #: what serves the shards when they are elsewhere ("Ray actors"): then read-only
        self.served_by: str | None = None

    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return sum(len(s) for s in self.shards)

    def offsets(self) -> list[int]:
        """The global position of each shard's first row."""
        out, total = [], 0
        for shard in self.shards:
            out.append(total)
            total += len(shard)
        return out

    def _new_shard(self) -> Backend:
        shard = make_backend(self.kind, self._dim, self.inner_metric, self.sparse, self.options,
                             device=self.device, dtype=self.dtype)
        self.shards.append(shard)
        self.saved.append(None)
        return shard

    def _check_writable(self) -> None:
        if self.served_by is not None:
            raise InputError(f"this index is served by {self.served_by} and is read-only; load "
                             "it again with Index.load(path) to change it")

    def add(self, X: Any) -> None:
        self._check_writable()
        start = 0
        while start < X.shape[0]:
            last = self.shards[-1] if self.shards else None
            if last is None or len(last) >= self.shard_size:
                last = self._new_shard()
            room = self.shard_size - len(last)
            last.add(X[start:start + room])
            self.saved[len(self.shards) - 1] = None
            start += room

    def remove(self, positions: np.ndarray) -> None:
        self._check_writable()
        positions = np.asarray(positions, dtype=np.int64)
        offsets = self.offsets()
        for i, (shard, off) in enumerate(zip(self.shards, offsets)):
            local = positions[(positions >= off) & (positions < off + len(shard))] - off
            if local.size:
                shard.remove(local)
                self.saved[i] = None
        # A shard left empty holds no position: drop it (the positions after it are unchanged).
        kept = [i for i, shard in enumerate(self.shards) if len(shard)]
        self.shards = [self.shards[i] for i in kept]
        self.saved = [self.saved[i] for i in kept]

    def search(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        live = [(s, off) for s, off in zip(self.shards, self.offsets()) if len(s)]
        rescore = self.sparse and self.inner_metric is InnerMetric.IP and len(live) > 1

        def one(item: tuple[Backend, int]) -> tuple[np.ndarray, np.ndarray]:
            scores, positions = item[0].search(Q, min(k, len(item[0])))
            if rescore and not getattr(item[0], "rescored", False):
                scores = sparse_products(Q, item[0].vectors, positions)  # type: ignore[attr-defined]
            return scores, positions

        parts = list(_pool().map(one, live)) if len(live) > 1 else [one(live[0])]
        return merge_topk_shards(parts, [off for _, off in live], k,
                                 self.inner_metric is InnerMetric.IP)

    @property
    def vectors(self) -> Any:
        """Every row in position order (None when a shard does not keep its vectors)."""
        blocks: list[Any] = [getattr(s, "vectors", None) for s in self.shards]
        if any(b is None for b in blocks):
            return None
        if self.sparse:
            import scipy.sparse as sp

            return sp.vstack(blocks, format="csr", dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(blocks), dtype=np.float32)

    def move(self, device: Device | str, dtype: str) -> None:
        """Serve every shard (and those added later) on ``device``."""
        self.shards = [move_backend(shard, device, dtype) for shard in self.shards]
        self.device, self.dtype = Device(device), dtype

    def release_buffer(self) -> None:
        for shard in self.shards:
            release = getattr(shard, "release_buffer", None)
            if release is not None:
                release()

    def save(self, folder: Path) -> dict[str, Any]:
        """Save as one backend (a one-shard index, or an exact one merged)."""
        if len(self.shards) == 1:
            return self.shards[0].save(folder)
        if self.kind is not BackendKind.EXACT:
            raise InputError(f"a {self.kind.value} index in {len(self.shards)} shards cannot be "
                             "written as one folder; save it with ShardedIndex.save(path)")
        merged = make_backend(self.kind, self._dim, self.inner_metric, self.sparse, {},
                              device=Device.CPU)
        merged.add(self.vectors)
        return merged.save(folder)

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], *, mmap: bool = True) -> Backend:
        raise InputError("a sharded index is read with ShardedIndex.load(path)")
