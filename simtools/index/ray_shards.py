"""A saved sharded index searched by Ray actors, one per shard, behind the same ``search``.

:func:`serve_on_ray` starts one actor per shard. Each loads its own shard folder (memory
mapped) from the index's path, which must therefore be readable at that path on every node
(a shared file system on a cluster), so no process ever holds more than one shard. A search
sends the queries to every actor at once, and the top k of the shards are merged here exactly
as for shards in this process (:class:`~simtools.index.sharded.ShardedBackend`): the
neighbours are the same. Served shards are read-only; load the index again to change it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .backend import InnerMetric
from .topk import sparse_products

__all__ = ["RayShard", "serve_on_ray"]


class _ShardServer:
    """One shard folder, loaded once, searched on request."""

    def __init__(self, folder: str, sparse_rescore: bool) -> None:
        from .store import Index

        self.backend: Any = Index._load_files(Path(folder), mmap=True)._backend
        self.sparse_rescore = sparse_rescore

    def search(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, positions = self.backend.search(Q, min(k, len(self.backend)))
        if self.sparse_rescore:
            scores = sparse_products(Q, self.backend.vectors, positions)
        return scores, positions


class RayShard:
    """A shard held by a Ray actor: ``search`` like a backend's, ``len`` from the manifest."""

    rescored = True  # the actor recomputes sparse scores itself, where they are merged

    def __init__(self, actor: Any, count: int) -> None:
        self.actor, self.count = actor, count

    def __len__(self) -> int:
        return self.count

    def search(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        import ray

        return ray.get(self.actor.search.remote(Q, k))  # type: ignore[no-any-return]

    @property
    def vectors(self) -> None:
        return None


def serve_on_ray(index: Any, *, address: str | None = None) -> Any:
    """Serve the shards of ``index`` (a :class:`~simtools.index.sharded.ShardedIndex` as loaded
    from its folder, unchanged since) on one Ray actor each; returns ``index``, which now
    searches through them."""
    from ..engines.ray_session import connect

    backend = index._backend
    records = getattr(backend, "saved", None)
    if index._saved_at is None or records is None or any(r is None for r in records):
        raise InputError("only a sharded index as saved can be served on Ray: save it, load it "
                         "with Index.load(path), then serve it")
    ray = connect(address)
    rescore = backend.sparse and backend.inner_metric is InnerMetric.IP
    # No CPU reserved: an actor per shard, more shards than CPUs; spread over the nodes, so
    # that each holds its share of the shards.
    server = ray.remote(num_cpus=0, scheduling_strategy="SPREAD")(_ShardServer)
    backend.shards = [RayShard(server.remote(str(Path(index._saved_at) / r.name), rescore),
                               r.count) for r in records]
    backend.served_by = "Ray actors"
    return index
