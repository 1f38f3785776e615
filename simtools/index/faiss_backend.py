"""Deprecated home of the FAISS backends: they moved to :mod:`simtools.index.faiss`."""

from __future__ import annotations

import warnings

from .faiss import (  # noqa: F401
    INDEX_FILE,
    KINDS,
    FaissBackend,
    FlatBackend,
    HNSWBackend,
    IVFBackend,
    gpu_available,
    load_backend,
    make_backend,
)

__all__ = ["INDEX_FILE", "FaissBackend", "FlatBackend", "HNSWBackend", "gpu_available",
           "load_backend", "make_backend"]

warnings.warn("simtools.index.faiss_backend moved to simtools.index.faiss", DeprecationWarning,
              stacklevel=2)
