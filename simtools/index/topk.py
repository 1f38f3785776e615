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
from typing import Any

import numpy as np

__all__ = ["RunningTopK", "merge_topk", "pool", "sparse_products", "topk", "topk_rows"]

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
        # The k-th and (k+1)-th places together: where they tie, argpartition may have kept
        # any of the tied columns, and the row is redone by a stable sort (smaller column wins).
        # kth from the top selects the largest without a negated copy of the block.
        kths = (n - k - 1, n - k) if largest else (k - 1, k)
        full = np.argpartition(scores, kths, axis=1)
        part = full[:, n - k:] if largest else full[:, :k]
        edges = np.take_along_axis(scores, full[:, list(kths)], axis=1)
        tied = np.flatnonzero(edges[:, 0] == edges[:, 1])
        if tied.size:
            part = part.copy()
            part[tied] = np.argsort(-scores[tied] if largest else scores[tied], axis=1,
                                    kind="stable")[:, :k]
    else:
        part = np.broadcast_to(np.arange(n), scores.shape).copy()
    values = np.take_along_axis(scores, part, axis=1)
    # lexsort on (column, key) makes the order deterministic when scores tie.
    order = np.lexsort((part, -values if largest else values), axis=1)
    return np.take_along_axis(values, order, axis=1), np.take_along_axis(part, order, axis=1)


def topk(scores: np.ndarray, k: int, *, largest: bool) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of every row of ``scores``, sorted best first.

    Returns ``(values, columns)``, each ``(rows, min(k, n_columns))``; tied scores are listed
    in column order, and of several columns tied at the k-th place the smaller ones are kept
    (the order of a stable sort). Large blocks are split by rows over a thread pool.
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


class RunningTopK:
    """The ``k`` best ``(score, column)`` of each of ``rows`` rows over the blocks seen so far.

    Larger scores are better; equal scores go to the smaller column (a stable sort's order),
    and since blocks arrive in column order a later column never displaces an equal score.
    ``threshold`` is each row's k-th best score (``-inf`` until k are known): a new score is a
    candidate only if it is strictly greater, which lets a blocked scan skip most of a block.
    """

    def __init__(self, rows: int, k: int) -> None:
        self.k = k
        self.values = np.full((rows, k), -np.inf, dtype=np.float32)
        self.columns = np.full((rows, k), -1, dtype=np.int64)
        self.threshold = np.full(rows, -np.inf, dtype=np.float32)

    def fold(self, rows: np.ndarray, scores: np.ndarray, columns: np.ndarray) -> None:
        """Merge candidates given as flat ``(row, score, column)`` arrays, in which each row's
        columns ascend and exceed every column folded before."""
        if rows.size == 0:
            return
        order = np.argsort(rows, kind="stable")  # by row; columns stay ascending within one
        rows, scores, columns = rows[order], scores[order], columns[order]
        counts = np.bincount(rows)
        hit = np.flatnonzero(counts)
        counts = counts[hit]
        k = self.k
        width = k + int(counts.max())
        where = np.repeat(np.arange(hit.size), counts)
        slot = k + np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
        merged = np.full((hit.size, width), -np.inf, dtype=np.float32)
        merged_columns = np.full((hit.size, width), -1, dtype=np.int64)
        merged[:, :k] = self.values[hit]
        merged_columns[:, :k] = self.columns[hit]
        merged[where, slot] = scores
        merged_columns[where, slot] = columns
        # Stable: the running best (earlier columns, in column order among ties) come first.
        best = np.argsort(-merged, axis=1, kind="stable")[:, :k]
        self.values[hit] = np.take_along_axis(merged, best, axis=1)
        self.columns[hit] = np.take_along_axis(merged_columns, best, axis=1)
        self.threshold[hit] = self.values[hit, k - 1]


def sparse_products(Q: Any, X: Any, positions: np.ndarray) -> np.ndarray:
    """The inner products of each query with its candidate rows, in float64 from the rows
    alone, rounded to float32: the same for a document whichever shard holds it. (A sparse
    shard's own scores group a document's terms by how frequent they are in that shard, so
    they can differ in the last bit from shard to shard, and exact ties would not be.)"""
    nq, k = positions.shape
    rows = np.repeat(np.arange(nq), k)
    flat = positions.ravel()
    ok = flat >= 0
    out = np.full(nq * k, -np.inf)
    if ok.any():
        pairs = X[flat[ok]].astype(np.float64).multiply(Q[rows[ok]].astype(np.float64))
        out[ok] = np.asarray(pairs.sum(axis=1)).ravel()
    return out.astype(np.float32).reshape(nq, k)
