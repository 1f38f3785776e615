"""Worker processes on this machine: each loads the fitted encoder once, then prepares
(cleans, reads) and encodes the work it is given; the main process only merges.

The pool is a :class:`concurrent.futures.ProcessPoolExecutor`, forked where the system can
(no ``if __name__ == "__main__"`` guard needed in the caller's script; a worker only cleans
and encodes, so it never uses the thread pools it inherits), and each worker limits BLAS to
one thread, so ``workers`` processes use ``workers`` cores.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from .transport import encoder_files, load_encoder_files
from .work import Prepare, Prepared, encode_prepared, peak_rss_mib

__all__ = ["EncodingPool", "run_task"]

_ENCODER: Any = None


def _start_worker(files: dict[str, bytes] | None) -> None:
    global _ENCODER
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - scikit-learn brings threadpoolctl
        pass
    _ENCODER = None if files is None else load_encoder_files(files)


def run_task(prepare: Prepare, payload: Any) -> tuple[Prepared, Any, Any, dict[str, float],
                                                      tuple[int, float]]:
    """In a worker: ``prepare(payload)``, then encode its documents with the worker's encoder."""
    prepared = prepare(payload)
    vectors, known, seconds = encode_prepared(_ENCODER, prepared)
    return prepared, vectors, known, seconds, (os.getpid(), peak_rss_mib())


class EncodingPool:
    """``workers`` processes that run :func:`run_task` with the fitted ``encoder``."""

    def __init__(self, encoder: Any, workers: int) -> None:
        files = None if encoder is None else encoder_files(encoder)
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        self.workers = workers
        self._executor = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                             initializer=_start_worker, initargs=(files,))

    def submit(self, prepare: Prepare, payload: Any) -> Future[Any]:
        return self._executor.submit(run_task, prepare, payload)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
