"""Checks on a saved student's state (its config and arrays) before it is used."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..persistence import FormatError
from .kinds import check_pages

__all__ = ["check_state"]


def check_state(config: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """A damaged weights file or config must fail here, not as an IndexError mid-classification."""
    for name, array in arrays.items():
        array = np.asarray(array)
        if array.dtype.kind not in "fi":
            raise FormatError(f"{name} has dtype {array.dtype}, expected float32 (or int8 embeddings)")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(np.size(array) - np.isfinite(array).sum())
            raise FormatError(f"{name} holds {bad} NaN or infinite value(s); the weights are damaged")
    embeddings = np.asarray(arrays["embeddings"])
    if embeddings.ndim != 2:
        raise FormatError(f"embeddings has shape {embeddings.shape}, expected (buckets, dim)")
    buckets, dim = embeddings.shape
    classes = len(config["labels"])
    if (embeddings.dtype.kind == "i") != ("embeddings_scale" in arrays):
        raise FormatError("int8 embeddings need embeddings_scale, and float ones must not have it")
    expected: dict[str, tuple[int, ...]] = {"embeddings_scale": (buckets,), "head_bias": (classes,)}
    if "proj_weight" in arrays:
        out_dim = np.shape(arrays["proj_weight"])[-1]
        expected |= {"proj_weight": (dim, out_dim), "proj_bias": (out_dim,)}
    for name, shape in expected.items():
        if name in arrays and np.shape(arrays[name]) != shape:
            raise FormatError(f"{name} has shape {np.shape(arrays[name])}, expected {shape}")
    check_pages(config.get("known_pages"))
