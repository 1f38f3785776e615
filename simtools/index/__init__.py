"""Metric-aware k-NN search: exact (BLAS, sparse scipy) and approximate (FAISS) backends."""

from __future__ import annotations

from .backend import BackendKind, InnerMetric
from .store import Index, Neighbour

__all__ = ["BackendKind", "Index", "InnerMetric", "Neighbour"]
