"""Top-k selection over blocks of scores: the rows' k best columns, exactly, in parallel.

``topk`` splits a block's rows over a thread pool (NumPy releases the GIL in its selection
routines). A long row is searched block-wise: the best of every ``SELECTION_BLOCK`` columns in
one vectorised pass, then only the winning blocks' columns, which is exact and 4-6x faster than
``argpartition`` over 10^5 columns (benchmarks/bench_exact_dense.py).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["merge_topk", "pool", "topk", "topk_rows"]

#: Below this many scores a block is selected on one thread (threads cost more than they save).
THREADED_SELECTION = 1 << 20
#: Long rows are selected block by block: the best of every this many columns first (one
#: vectorised max over the row), then only the best blocks' columns. 4-6x faster than
#: argpartition over 10^5 columns in benchmarks/bench_exact_dense.py's setting.
SELECTION_BLOCK = 128

_POOL: ThreadPoolExecutor | None = None


def pool() -> ThreadPoolExecutor:
    """The shared worker threads (one per core) of exact search."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="simtools-exact")
    return _POOL


def topk_rows(scores: np.ndarray, k: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """``topk`` on the calling thread: ``(values, columns)``, each ``(rows, min(k, n))``."""
    n = scores.shape[1]
    if k < n and n >= SELECTION_BLOCK * max(4 * k, 64):
        return _topk_rows_by_blocks(scores, k, largest)
    return _topk_rows_direct(scores, k, largest)


def _topk_rows_by_blocks(scores: np.ndarray, k: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """``topk_rows`` for long rows: the best of each block of ``SELECTION_BLOCK`` columns
    first (one vectorised pass), then the k best among the k blocks with the best maxima.

    Exact: when the k-th and (k+1)-th block maxima differ, every other block lies strictly
    below the k-th best score. Rows where they tie are redone column by column.
    """
    rows, n = scores.shape
    width = SELECTION_BLOCK
    n_blocks = n // width
    body = scores[:, : n_blocks * width].reshape(rows, n_blocks, width)
    extremes = body.max(axis=2) if largest else body.min(axis=2)
    block_values, blocks = _topk_rows_direct(extremes, k + 1, largest)
    # Ascending blocks keep candidates in column order, so ties still go to the smaller column.
    blocks = np.sort(blocks[:, :k], axis=1)
    columns = (blocks[:, :, None] * width + np.arange(width)).reshape(rows, k * width)
    if n > n_blocks * width:  # the short last block is always a candidate
        tail = np.arange(n_blocks * width, n)
        columns = np.concatenate([columns, np.broadcast_to(tail, (rows, tail.size))], axis=1)
    values, picked = _topk_rows_direct(np.take_along_axis(scores, columns, axis=1), k, largest)
    positions = np.take_along_axis(columns, picked, axis=1)
    tied = block_values[:, k - 1] == block_values[:, k]
    if tied.any():
        values[tied], positions[tied] = _topk_rows_direct(scores[tied], k, largest)
    return values, positions


def _topk_rows_direct(scores: np.ndarray, k: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
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

    Returns ``(values, columns)``, each ``(rows, min(k, n_columns))``; tied scores among the
    k are listed in column order (which of several columns tied at the k-th place is kept is
    not specified). Large blocks are split by rows over a thread pool.
    """
    k = min(k, scores.shape[1])
    threads = min(os.cpu_count() or 1, scores.shape[0])
    # Inside a pool worker (threaded sparse batches) stay on this thread: no nested waits.
    in_worker = threading.current_thread().name.startswith("simtools-exact")
    if scores.size < THREADED_SELECTION or threads < 2 or in_worker:
        return topk_rows(scores, k, largest)
    cuts = np.linspace(0, scores.shape[0], threads + 1).astype(int)
    parts = list(pool().map(lambda lo, hi: topk_rows(scores[lo:hi], k, largest),
                             cuts[:-1], cuts[1:]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def merge_topk(best: tuple[np.ndarray, np.ndarray] | None, scores: np.ndarray,
               columns: np.ndarray, k: int, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """The k best of a running ``best`` and a new block's ``(scores, columns)``."""
    if best is None:
        return scores, columns
    all_scores = np.concatenate([best[0], scores], axis=1)
    all_columns = np.concatenate([best[1], columns], axis=1)
    values, picked = topk_rows(all_scores, k, largest)
    return values, np.take_along_axis(all_columns, picked, axis=1)
