"""What a search backend is: stored vectors, searched by inner product or squared L2.

The :class:`~simtools.index.store.Index` turns the user's metric into one of two inner metrics
(cosine and normalised Euclidean become inner product over unit vectors) and hands vectors that
are already normalised to a backend. A backend knows nothing of texts, ids or metadata: it holds
rows at positions ``0..len-1`` and answers ``search`` with positions.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Backend", "BackendKind", "InnerMetric"]


class InnerMetric(str, Enum):
    """The two things a backend computes."""

    IP = "ip"  # inner product; larger is nearer
    L2 = "l2"  # squared Euclidean distance; smaller is nearer


class BackendKind(str, Enum):
    """Search algorithms; ``exact`` is brute force (dense BLAS or sparse scipy)."""

    EXACT = "exact"
    FLAT = "flat"  # FAISS IndexFlat (exact; runs on the GPU when one is present)
    HNSW = "hnsw"
    IVF = "ivf"


@runtime_checkable
class Backend(Protocol):
    """Rows at positions ``0..len-1``; ``search`` returns ``(scores, positions)``.

    ``scores`` is float32 ``(nq, k)``: inner products (descending) or squared L2 distances
    (ascending). ``positions`` is int64 ``(nq, k)``; ``-1`` marks a missing neighbour (an ANN
    index that found fewer than ``k``).
    """

    kind: BackendKind
    inner_metric: InnerMetric

    def __len__(self) -> int: ...

    @property
    def dim(self) -> int: ...

    def add(self, X: Any) -> None:
        """Append rows (C-contiguous float32 ``(n, dim)``, or CSR for a sparse backend)."""

    def remove(self, positions: np.ndarray) -> None:
        """Delete rows; later rows move up so positions stay ``0..len-1``."""

    def search(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, folder: Path) -> dict[str, Any]:
        """Write the backend's files into ``folder``; return its JSON config."""

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], *, mmap: bool = True) -> Backend: ...
