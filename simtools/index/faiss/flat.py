"""Exact FAISS search (``IndexFlatIP`` / ``IndexFlatL2``) and graph search (HNSW)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from simtools._validation import check_int
from simtools.index.backend import BackendKind, InnerMetric

from .base import FaissBackend
from .common import DEFAULT_EF_CONSTRUCTION, DEFAULT_EF_SEARCH, DEFAULT_M, faiss_metric, int_knob

__all__ = ["FlatBackend", "HNSWBackend"]

logger = logging.getLogger(__name__)


class FlatBackend(FaissBackend):
    """Exact search with ``IndexFlatIP`` / ``IndexFlatL2`` (the GPU brute force when present)."""

    kind = BackendKind.FLAT

    def __init__(self, dim: int, inner_metric: str | InnerMetric = InnerMetric.IP) -> None:
        super().__init__(dim, inner_metric)
        f = self._faiss
        cls = f.IndexFlatIP if self.inner_metric is InnerMetric.IP else f.IndexFlatL2
        self._index = cls(self._dim)


class HNSWBackend(FaissBackend):
    """Graph search with ``IndexHNSWFlat`` (or ``IndexHNSWSQ`` with ``compression="sq8"``).

    ``m``: graph degree (memory and recall grow with it); ``ef_construction``: build-time beam
    (build time and graph quality); ``ef_search``: search-time beam, the recall/speed knob.
    """

    kind = BackendKind.HNSW

    def __init__(
        self,
        dim: int,
        inner_metric: str | InnerMetric = InnerMetric.IP,
        *,
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef_search: int = DEFAULT_EF_SEARCH,
        compression: str | None = None,
    ) -> None:
        super().__init__(dim, inner_metric)
        self.m = check_int(m, "m", minimum=2)
        self.ef_construction = check_int(ef_construction, "ef_construction")
        self.ef_search = ef_search
        if compression not in (None, "sq8"):
            raise ValueError(f"compression {compression!r} is not available for hnsw; "
                             "use None or 'sq8' (product quantisation needs kind='ivf')")
        self.compression = compression
        self._index = self._new_index()

    ef_search = int_knob("ef_search", "Search-time beam width: higher finds more true "
                                      "neighbours, more slowly.")

    def _new_index(self) -> Any:
        f = self._faiss
        metric = faiss_metric(f, self.inner_metric)
        if self.compression == "sq8":
            index = f.IndexHNSWSQ(self._dim, f.ScalarQuantizer.QT_8bit, self.m, metric)
        else:
            index = f.IndexHNSWFlat(self._dim, self.m, metric)
        index.hnsw.efConstruction = self.ef_construction
        return index

    def _add(self, X: np.ndarray) -> None:
        if not self._index.is_trained:
            # SQ8 learns each dimension's range from the first batch; later rows are clipped.
            self._index.train(X)
        self._index.hnsw.efConstruction = self.ef_construction
        self._index.add(X)

    def _remove(self, pos: np.ndarray) -> None:
        keep = np.ones(len(self), dtype=bool)
        keep[pos] = False
        kept = self._index.reconstruct_n(0, len(self))[keep]
        trained = self._index if self.compression == "sq8" else None
        if trained is not None:
            # Keep the learnt SQ8 ranges: the survivors' codes then decode and re-encode unchanged.
            new = self._faiss.clone_index(trained)
            new.reset()
        else:
            new = self._new_index()
        new.hnsw.efConstruction = self.ef_construction
        if kept.shape[0]:
            new.add(np.ascontiguousarray(kept, dtype=np.float32))
        self._index = new
        logger.debug("hnsw: rebuilt the graph without %d rows (%d left)", pos.size, len(self))

    def _apply_search_params(self, index: Any) -> None:
        index.hnsw.efSearch = self.ef_search

    def _options(self) -> dict[str, Any]:
        return {"m": self.m, "ef_construction": self.ef_construction,
                "ef_search": self.ef_search, "compression": self.compression}
