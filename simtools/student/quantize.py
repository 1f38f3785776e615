"""int8 quantisation of the student's tables (done once, after training)."""

from __future__ import annotations

import numpy as np

__all__ = ["quantize_rows"]


def quantize_rows(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 quantisation with one float32 scale per row: ``table ~ q * scale[:, None]``."""
    table = np.asarray(table, dtype=np.float32)
    peak = np.abs(table).max(axis=1)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(table / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def dequantize_rows(table: np.ndarray, scale: np.ndarray | None) -> np.ndarray:
    """The table as C-contiguous float32: ``table`` itself when ``scale`` is None, else the
    int8 rows times their scales (the inverse of :func:`quantize_rows`, up to rounding)."""
    if scale is None:
        return np.ascontiguousarray(table, dtype=np.float32)
    return np.ascontiguousarray(table.astype(np.float32) * scale[:, None])
