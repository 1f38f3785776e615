"""Pieces of a build's work run on Ray actors (``--engine ray``), the results back in order.

:func:`run_on_ray` takes a Ray dataset whose rows are pieces of work (rows of a table, or one
JSON payload per range of a multistream dump), and a module-level ``prepare_batch`` that turns
one batch of rows into :class:`~simtools.engines.work.Prepared` documents. ``map_batches`` runs
it on a pool of ``workers`` actors (``ActorPoolStrategy``), each of which loads the fitted
encoder once, from its saved files, and encodes what it prepared. The results come back in
input order (Ray Data's ``preserve_order``), packed as plain columns (no pickle), and go to
``take`` in this process: the index builder, which writes the shards.

What to read and how (files, dumps) is said by the callers, :mod:`simtools.index.build_ray`
and :mod:`simtools.wiki.dump_source`; this module knows only how work runs on Ray.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .packing import pack, unpack
from .ray_session import actor_pool
from .transport import encoder_files, load_encoder_files
from .work import Prepared, encode_prepared, peak_rss_mib

__all__ = ["PrepareBatch", "Result", "run_on_ray"]

#: one batch of dataset rows (a dict of numpy columns) -> the documents it makes
PrepareBatch = Callable[[dict[str, Any]], list[Prepared]]
#: ``(prepared, vectors, known, CPU seconds by stage, (worker, its peak memory in MiB))``
Result = tuple[Prepared, Any, Any, dict[str, float], tuple[Any, float]]


class _WorkActor:
    """Rows in, one packed result per piece of work out; the encoder loaded once."""

    def __init__(self, files: dict[str, bytes], prepare_batch: PrepareBatch) -> None:
        self.encoder = load_encoder_files(files)
        self.prepare_batch = prepare_batch
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        results, arrays = [], []
        for prepared in self.prepare_batch(batch):
            vectors, known, seconds = encode_prepared(self.encoder, prepared)
            row = pack(prepared, vectors, known, seconds, (self.worker, peak_rss_mib()))
            results.append(row["result"])
            arrays.append(row["arrays"])
        return {"result": np.array(results, dtype=object), "arrays": np.array(arrays, dtype=object)}


def run_on_ray(dataset: Any, prepare_batch: PrepareBatch, encoder: Any, *, workers: int,
               batch_size: int, take: Callable[[Result], None],
               stop: Callable[[], bool] | None = None) -> None:
    """Prepare and encode the rows of ``dataset`` on ``workers`` actors, ``batch_size`` rows
    to a batch; each result goes to ``take`` in input order, until ``stop()`` says enough."""
    encoded = dataset.map_batches(_WorkActor, fn_constructor_args=(encoder_files(encoder),
                                                                   prepare_batch),
                                  batch_size=batch_size, batch_format="numpy",
                                  compute=actor_pool(workers))
    for result in _results(encoded):
        take(result)
        if stop is not None and stop():
            break


def _results(dataset: Any) -> Iterator[Result]:
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for result, arrays in zip(batch["result"], batch["arrays"]):
            yield unpack(str(result), bytes(arrays))
