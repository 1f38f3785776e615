"""Deprecated home of the IVF backend: it moved to :mod:`simtools.index.faiss.ivf`."""

from __future__ import annotations

import warnings

from .faiss.ivf import IVFBackend

__all__ = ["IVFBackend"]

warnings.warn("simtools.index.faiss_ivf moved to simtools.index.faiss.ivf", DeprecationWarning,
              stacklevel=2)
