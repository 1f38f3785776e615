"""FAISS inverted-file search: ``IndexIVFFlat``, ``IndexIVFPQ`` and ``IndexIVFScalarQuantizer``.

Split from :mod:`simtools.index.faiss`, whose package docstring describes training,
removal, GPU search and memory mapping for every FAISS backend.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from simtools._validation import check_int, check_vectors
from simtools.index.backend import BackendKind, InnerMetric

from .base import FaissBackend
from .common import DEFAULT_NPROBE, DEFAULT_PQ_BITS, MIN_POINTS_PER_CENTROID, faiss_metric, int_knob

__all__ = ["IVFBackend"]

logger = logging.getLogger(__name__)


class IVFBackend(FaissBackend):
    """Inverted-file search: ``IndexIVFFlat``, ``IndexIVFPQ`` (``compression="pq"``) or
    ``IndexIVFScalarQuantizer`` (``compression="sq8"``).

    ``nlist``: number of k-means cells (default ``4 * sqrt(n)`` at training time); ``nprobe``:
    cells visited per query, the recall/speed knob; ``pq_m``: PQ sub-quantizers (must divide
    ``dim``; default ``dim // 8``, 8 dimensions per byte); ``pq_bits``: bits per sub-code;
    ``refine``: with compression, re-rank the ``refine * k`` best candidates by their exact
    score (FAISS ``IndexRefineFlat``, which keeps the full vectors beside the codes, so memory
    is that of a flat index plus the codes); 0 leaves the codes' order.
    """

    kind = BackendKind.IVF

    def __init__(
        self,
        dim: int,
        inner_metric: str | InnerMetric = InnerMetric.IP,
        *,
        nlist: int | None = None,
        nprobe: int = DEFAULT_NPROBE,
        compression: str | None = None,
        pq_m: int | None = None,
        pq_bits: int = DEFAULT_PQ_BITS,
        refine: int = 0,
        seed: int = 1234,
    ) -> None:
        super().__init__(dim, inner_metric)
        self.nlist = None if nlist is None else check_int(nlist, "nlist")
        self.nprobe = nprobe
        if compression not in (None, "pq", "sq8"):
            raise ValueError(f"unknown compression {compression!r}; valid values are None, "
                             "'pq' and 'sq8'")
        self.compression = compression
        self.pq_bits = check_int(pq_bits, "pq_bits")
        self.pq_m: int | None
        if compression == "pq":
            self.pq_m = check_int(pq_m, "pq_m") if pq_m is not None else max(1, self._dim // 8)
            if self._dim % self.pq_m:
                divisors = [d for d in range(1, self._dim + 1) if self._dim % d == 0]
                raise ValueError(f"pq_m={self.pq_m} does not divide dim={self._dim}; "
                                 f"choose one of {divisors}")
        else:
            self.pq_m = pq_m
        self.refine = refine
        if self.refine and compression is None:
            raise ValueError("refine re-ranks compressed codes by exact scores; an IVF without "
                             "compression scores exactly already: use refine=0 or set "
                             "compression='pq' or 'sq8'")
        self.seed = int(seed)
        self._pending: list[np.ndarray] = []  # rows added before training
        self._index = None

    # An untrained IVF holds its rows in the buffer, so length and removal look there too.
    def __len__(self) -> int:
        if self._index is None:
            return sum(x.shape[0] for x in self._pending)
        return int(self._index.ntotal)

    nprobe = int_knob("nprobe", "Cells visited per query: higher finds more true neighbours, "
                                "more slowly.")

    @property
    def refine(self) -> int:
        """Candidates re-ranked exactly, as a multiple of k (0: none)."""
        return self._refine

    @refine.setter
    def refine(self, value: int) -> None:
        value = check_int(value, "refine", minimum=0)
        if value and getattr(self, "_index", None) is not None and not self._refined:
            raise ValueError("this index was built without refine, so it has no full vectors "
                             "to re-rank with; rebuild it with refine > 0")
        self._refine = value

    @property
    def _refined(self) -> bool:
        """Whether the FAISS index keeps full vectors (an ``IndexRefineFlat`` around the IVF)."""
        return self._index is not None and hasattr(self._index, "base_index")

    def _ivf(self) -> Any:
        """The inverted-file index itself, inside the refine wrapper when there is one."""
        if self._refined:
            return self._faiss.downcast_index(self._index.base_index)
        return self._index

    @property
    def is_trained(self) -> bool:
        return self._index is not None

    def min_train_size(self) -> int:
        """The fewest rows that can train this configuration."""
        need = self.nlist or 1
        if self.compression == "pq":
            need = max(need, 2**self.pq_bits)
        return need

    def train(self, X: Any | None = None) -> None:
        """Train on ``X`` (or, by default, on the buffered rows) and add the buffer."""
        if self._index is not None:
            return
        pending = np.concatenate(self._pending) if self._pending else None
        sample = pending if X is None else check_vectors(X, name="training vectors", dim=self._dim)
        n = 0 if sample is None else sample.shape[0]
        if n < self.min_train_size():
            raise ValueError(
                f"too few vectors to train the ivf index: got {n}, need at least "
                f"{self.min_train_size()} (nlist={self.nlist or 'auto'}, compression="
                f"{self.compression!r}, pq_bits={self.pq_bits}); add more vectors, lower "
                "nlist/pq_bits, or use backend='hnsw' or 'flat' for a small collection"
            )
        assert sample is not None  # n >= min_train_size() >= 1
        nlist = self.nlist or max(1, min(round(4 * math.sqrt(n)), n // MIN_POINTS_PER_CENTROID))
        ivf = self._new_index(nlist)
        # k-means gains little past ~256 points per cell; a seeded sample keeps training fast.
        cap = 256 * nlist
        if n > cap:
            rows = np.random.default_rng(self.seed).choice(n, cap, replace=False)
            sample = sample[np.sort(rows)]
        ivf.cp.seed = self.seed
        ivf.train(np.ascontiguousarray(sample))
        index = ivf
        if self.refine:
            # Wrapped after training: the flat refine index needs none, and adds go to both.
            index = self._faiss.IndexRefineFlat(ivf)
            self._base = ivf  # the Python wrapper keeps it alive; so do we
        self.nlist = nlist
        self._index = index
        self._apply_search_params(index)
        if pending is not None:
            index.add(pending)
        self._pending = []
        logger.info("ivf: trained %d cells on %d vectors; %d rows indexed", nlist, n, len(self))

    def _new_index(self, nlist: int) -> Any:
        f = self._faiss
        metric = faiss_metric(f, self.inner_metric)
        quantizer = f.IndexFlatIP(self._dim) if metric == f.METRIC_INNER_PRODUCT else f.IndexFlatL2(self._dim)
        if self.compression == "pq":
            index = f.IndexIVFPQ(quantizer, self._dim, nlist, self.pq_m, self.pq_bits, metric)
        elif self.compression == "sq8":
            index = f.IndexIVFScalarQuantizer(quantizer, self._dim, nlist,
                                              f.ScalarQuantizer.QT_8bit, metric)
        else:
            index = f.IndexIVFFlat(quantizer, self._dim, nlist, metric)
        return index  # FAISS's Python wrapper keeps ``quantizer`` alive with the index

    def _add(self, X: np.ndarray) -> None:
        if self._index is None:
            self._pending.append(X.copy())
        else:
            self._index.add(X)

    def _remove(self, pos: np.ndarray) -> None:
        if self._index is None:
            keep = np.ones(len(self), dtype=bool)
            keep[pos] = False
            self._pending = [np.concatenate(self._pending)[keep]] if keep.any() else []
            return
        if not self._refined:
            super()._remove(pos)
        else:
            # IndexRefineFlat has no remove_ids: remove from the codes and the full vectors
            # alike (the flat one compacts, as _renumber makes the IVF do), then recount.
            f = self._faiss
            selector = f.IDSelectorBatch(pos.size, f.swig_ptr(pos))
            self._ivf().remove_ids(selector)
            f.downcast_index(self._index.refine_index).remove_ids(selector)
            self._index.ntotal = self._ivf().ntotal
        self._renumber(pos)

    def _renumber(self, removed: np.ndarray) -> None:
        """After ``remove_ids`` the survivors keep their old ids; shift them down to 0..n-1."""
        f = self._faiss
        invlists = self._ivf().invlists
        code_size = invlists.code_size
        for lst in range(invlists.nlist):
            size = invlists.list_size(lst)
            if size == 0:
                continue
            ids = f.rev_swig_ptr(invlists.get_ids(lst), size).copy()
            codes = f.rev_swig_ptr(invlists.get_codes(lst), size * code_size).copy()
            new_ids = ids - np.searchsorted(removed, ids)  # rows removed before each survivor
            invlists.update_entries(lst, 0, size, f.swig_ptr(new_ids), f.swig_ptr(codes))

    def _before_search(self) -> None:
        if self._index is None and self._pending:
            self.train()

    def _searcher(self) -> Any:
        if self._index is None:  # nothing added yet: an empty flat index answers with -1
            return _EmptyIndex()
        return super()._searcher()

    def _apply_search_params(self, index: Any) -> None:
        if hasattr(index, "base_index"):
            index.k_factor = max(1, self.refine)  # 1: the codes' own top k, re-scored exactly
            index = self._faiss.downcast_index(index.base_index)
        index.nprobe = self.nprobe

    def _options(self) -> dict[str, Any]:
        return {"nlist": self.nlist, "nprobe": self.nprobe, "compression": self.compression,
                "pq_m": self.pq_m, "pq_bits": self.pq_bits, "refine": self.refine,
                "seed": self.seed}

    def save(self, folder: Path) -> dict[str, Any]:
        if self._index is None and not self._pending:
            raise ValueError("the ivf backend is empty and untrained; add vectors before saving")
        return super().save(folder)


class _EmptyIndex:
    ntotal = 0
