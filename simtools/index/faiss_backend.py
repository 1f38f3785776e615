"""FAISS search backends: exact ``flat``, graph ``hnsw`` and inverted-file ``ivf`` (PQ / SQ8).

Each backend follows :class:`~simtools.index.backend.Backend`: rows live at positions
``0..len-1`` and ``search`` answers ``(scores, positions)`` under the inner metric ``"ip"``
(inner product, descending) or ``"l2"`` (squared Euclidean distance, ascending); ``-1`` marks a
missing neighbour, with score ``-inf`` (ip) or ``+inf`` (l2).

Recall and speed knobs (``ef_search`` for HNSW, ``nprobe`` for IVF) are plain attributes that can
be changed at any time, after :func:`load_backend` too. Their defaults were measured with
``benchmarks/bench_ann.py`` (see the README's benchmark section).

Behaviours worth knowing:

* **IVF training.** An IVF index must be trained (k-means) before it holds anything. Added rows
  are buffered until the first ``search``, ``save`` or explicit :meth:`IVFBackend.train`, then
  the index is trained on all of them, with ``nlist`` defaulting to ``4 * sqrt(n)`` (at most
  ``n // 39`` so that every centroid gets FAISS's recommended 39 training points). PQ needs at
  least ``2 ** pq_bits`` training rows; fewer raise a ``ValueError`` saying how many to add.
* **Removal.** FAISS cannot delete from an HNSW graph, so an HNSW backend rebuilds the graph from
  the stored vectors (``reconstruct``) without the removed rows: O(n log n), fine for occasional
  deletes. Flat compacts in place; IVF deletes with ``remove_ids`` and renumbers the survivors
  list by list, which keeps the compressed codes untouched (no re-encoding drift for PQ).
* **GPU.** On a FAISS GPU build with at least one visible GPU, searches run on a replica spread
  over all GPUs (``index_cpu_to_all_gpus``); the master copy stays on the CPU, so ``save``
  always writes a CPU index. Kinds the GPU cannot hold (HNSW) stay on the CPU, with a log line.
* **Memory mapping.** ``load_backend(..., mmap=True)`` maps the file (``IO_FLAG_MMAP_IFC``)
  instead of reading it, for every kind. A mapped index is read-only inside FAISS (a write
  aborts the process), so the first ``add``/``remove`` copies it into memory first.

FAISS is an optional extra: ``pip install simtools[ann]`` (CPU) or ``pip install simtools[gpu]``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from simtools._validation import check_choice, check_vectors
from simtools.index.backend import BackendKind, InnerMetric
from simtools.persistence import FormatError, member

__all__ = [
    "FaissBackend",
    "FlatBackend",
    "HNSWBackend",
    "INDEX_FILE",
    "gpu_available",
    "load_backend",
    "make_backend",
]

logger = logging.getLogger(__name__)

INDEX_FILE = "index.faiss"
_FORMAT_VERSION = 1
_MIN_POINTS_PER_CENTROID = 39  # below this FAISS warns that k-means is under-trained

# Defaults measured with benchmarks/bench_ann.py (README, "Approximate search"): on 100k x 384
# clustered unit vectors, ef_search 64 gave recall@10 0.993 at 12x exact search (32 gave 0.954)
# and nprobe 16 gave 1.000 at 34x (8 gave 0.927); both keep a margin for real embeddings.
DEFAULT_M = 32
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF_SEARCH = 64
DEFAULT_NPROBE = 16
DEFAULT_PQ_BITS = 8


def _faiss() -> Any:
    """Import FAISS, or say which extra to install."""
    try:
        import faiss
    except ImportError as e:
        raise ImportError(
            "FAISS is needed for the 'flat', 'hnsw' and 'ivf' backends but is not installed; "
            "run: pip install simtools[ann]   (or pip install simtools[gpu] for the CUDA 12 "
            "build), or use backend='exact'"
        ) from e
    return faiss


def gpu_available(faiss: Any | None = None) -> bool:
    """True when FAISS is a GPU build and sees at least one GPU.

    The ``hasattr`` check comes first: a CPU build has no GPU symbols, and a GPU build on a
    machine without a GPU reports 0 rather than failing.
    """
    faiss = faiss if faiss is not None else _faiss()
    if not hasattr(faiss, "StandardGpuResources"):
        return False
    try:
        return int(faiss.get_num_gpus()) > 0
    except (AttributeError, RuntimeError):
        return False


def _faiss_metric(faiss: Any, inner_metric: InnerMetric) -> int:
    return faiss.METRIC_INNER_PRODUCT if inner_metric is InnerMetric.IP else faiss.METRIC_L2


def _check_int(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def int_knob(name: str, doc: str) -> Any:
    """A search-time knob: a property that keeps a positive int in ``_<name>``, checked on set."""
    attr = f"_{name}"

    def get(self: Any) -> int:
        return getattr(self, attr)

    def set_(self: Any, value: int) -> None:
        setattr(self, attr, _check_int(value, name))

    return property(get, set_, doc=doc)


class FaissBackend:
    """Shared machinery: validation, the GPU replica, mmap copy-on-write, save and load."""

    kind: BackendKind

    def __init__(self, dim: int, inner_metric: str | InnerMetric) -> None:
        self._faiss = _faiss()
        self._dim = _check_int(dim, "dim")
        self.inner_metric = check_choice(inner_metric, InnerMetric, name="inner metric")
        self._index: Any = None  # the CPU master copy
        self._gpu_index: Any = None  # a search replica, rebuilt after any change
        self._gpu_params: dict[str, Any] | None = None  # the knobs the replica was made with
        self._mapped = False  # True while _index is a read-only memory map of a file

    # -- the Backend protocol -------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, X: Any) -> None:
        """Append rows: C-contiguous float32 ``(n, dim)``."""
        X = check_vectors(X, name="vectors", dim=self._dim)
        self._make_writable()
        self._add(X)
        self._gpu_index = None

    def remove(self, positions: Any) -> None:
        """Delete the rows at ``positions``; later rows move up so positions stay ``0..len-1``."""
        pos = self._check_positions(positions)
        if pos.size == 0:
            return
        self._make_writable()
        self._remove(pos)
        self._gpu_index = None

    def search(self, Q: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows for each query: float32 scores ``(nq, k)``, int64 positions ``(nq, k)``."""
        Q = check_vectors(Q, name="queries", dim=self._dim)
        k = _check_int(k, "k")
        self._before_search()
        index = self._searcher()
        if index.ntotal == 0:
            scores = np.empty((Q.shape[0], k), dtype=np.float32)
            scores.fill(self._missing_score)
            return scores, np.full((Q.shape[0], k), -1, dtype=np.int64)
        dist, labels = index.search(Q, k)
        scores = np.ascontiguousarray(dist, dtype=np.float32)
        positions = np.ascontiguousarray(labels, dtype=np.int64)
        missing = positions < 0
        if missing.any():
            scores[missing] = self._missing_score  # FAISS pads with +-FLT_MAX; make it explicit
        return scores, positions

    def save(self, folder: Path) -> dict[str, Any]:
        """Write ``folder/index.faiss`` (always a CPU index) and return the JSON config."""
        self._before_search()  # an IVF buffer is trained and flushed so nothing is lost
        path = Path(folder) / INDEX_FILE
        self._faiss.write_index(self._index, str(path))
        return {
            "backend_format_version": _FORMAT_VERSION,
            "kind": self.kind.value,
            "inner_metric": self.inner_metric.value,
            "dim": self._dim,
            "ntotal": len(self),
            "file": INDEX_FILE,
            "file_bytes": path.stat().st_size,
            "faiss_version": getattr(self._faiss, "__version__", "unknown"),
            "options": self._options(),
        }

    @classmethod
    def load(cls, folder: Path, config: dict[str, Any], *, mmap: bool = True) -> FaissBackend:
        """Read a backend written by :meth:`save`; a damaged file raises ``FormatError``."""
        return load_backend(folder, config, mmap=mmap)

    # -- hooks for subclasses --------------------------------------------------------------
    def _add(self, X: np.ndarray) -> None:
        self._index.add(X)

    def _remove(self, pos: np.ndarray) -> None:
        self._index.remove_ids(self._faiss.IDSelectorBatch(pos.size, self._faiss.swig_ptr(pos)))

    def _before_search(self) -> None:
        """Bring the index up to date before it is read (IVF trains here)."""

    def _apply_search_params(self, index: Any) -> None:
        """Set the recall/speed knobs on the CPU master (copied into any GPU replica)."""

    def _options(self) -> dict[str, Any]:
        return {}

    # -- helpers ---------------------------------------------------------------------------
    @property
    def _missing_score(self) -> float:
        return -np.inf if self.inner_metric is InnerMetric.IP else np.inf

    def _check_positions(self, positions: Any) -> np.ndarray:
        pos = np.asarray(positions)
        if pos.size and not np.issubdtype(pos.dtype, np.integer):
            raise TypeError(f"positions must be integers, got dtype {pos.dtype}")
        pos = np.unique(pos.astype(np.int64).ravel())
        n = len(self)
        if pos.size and (pos[0] < 0 or pos[-1] >= n):
            bad = pos[(pos < 0) | (pos >= n)]
            raise ValueError(f"positions {bad[:5].tolist()} are outside 0..{n - 1}; "
                             f"the backend holds {n} rows")
        return pos

    def _make_writable(self) -> None:
        """Copy a memory-mapped index into memory: FAISS aborts on a write to a mapped one."""
        if self._mapped:
            faiss = self._faiss
            self._index = faiss.deserialize_index(faiss.serialize_index(self._index))
            self._apply_search_params(self._index)
            self._mapped = False

    def _searcher(self) -> Any:
        self._apply_search_params(self._index)
        if self._gpu_params != self._options():
            self._gpu_index = None  # a knob changed since the replica was made from the master
        if self._gpu_index is None and gpu_available(self._faiss) and self._index.ntotal > 0:
            self._gpu_params = self._options()
            try:
                self._gpu_index = self._faiss.index_cpu_to_all_gpus(self._index)
            except RuntimeError as e:  # e.g. HNSW has no GPU implementation
                logger.info("%s index stays on the CPU: FAISS cannot copy it to the GPU (%s)",
                            self.kind.value, str(e).splitlines()[0] if str(e) else e)
                self._gpu_index = False
        return self._gpu_index or self._index


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
        self.m = _check_int(m, "m", minimum=2)
        self.ef_construction = _check_int(ef_construction, "ef_construction")
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
        metric = _faiss_metric(f, self.inner_metric)
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


def _kinds() -> dict[BackendKind, type[FaissBackend]]:
    from .faiss_ivf import IVFBackend  # its own module; it builds on FaissBackend

    return {BackendKind.FLAT: FlatBackend, BackendKind.HNSW: HNSWBackend,
            BackendKind.IVF: IVFBackend}


_OPTIONS = {
    BackendKind.FLAT: (),
    BackendKind.HNSW: ("m", "ef_construction", "ef_search", "compression"),
    BackendKind.IVF: ("nlist", "nprobe", "compression", "pq_m", "pq_bits", "refine", "seed"),
}


def _check_kind(kind: str | BackendKind) -> BackendKind:
    found = check_choice(kind, BackendKind, name="faiss backend kind")
    if found not in _OPTIONS:
        raise ValueError(f"kind {found.value!r} is not a FAISS backend; valid values are "
                         f"{', '.join(repr(k.value) for k in _OPTIONS)}")
    return found


def make_backend(
    kind: str | BackendKind, dim: int, inner_metric: str | InnerMetric, **options: Any
) -> FaissBackend:
    """Create an empty FAISS backend of ``kind`` ("flat", "hnsw" or "ivf").

    ``options``: hnsw takes ``m``, ``ef_construction``, ``ef_search``, ``compression`` (None or
    "sq8"); ivf takes ``nlist``, ``nprobe``, ``compression`` (None, "pq" or "sq8"), ``pq_m``,
    ``pq_bits``, ``refine`` (exact re-ranking of ``refine * k`` candidates), ``seed``; flat
    takes none.
    """
    found = _check_kind(kind)
    unknown = sorted(set(options) - set(_OPTIONS[found]))
    if unknown:
        valid = ", ".join(_OPTIONS[found]) or "none"
        raise ValueError(f"unknown option(s) {unknown} for the {found.value!r} backend; "
                         f"valid options are: {valid}")
    return _kinds()[found](dim, inner_metric, **options)


def load_backend(folder: Path, config: dict[str, Any], *, mmap: bool = True) -> FaissBackend:
    """Read a backend written by :meth:`FaissBackend.save` from ``folder``.

    With ``mmap=True`` the file is memory-mapped (FAISS ``IO_FLAG_MMAP_IFC``), so opening a large
    index is instant and its pages are shared between processes; the first write copies it into
    memory. A missing, truncated or corrupted file raises :class:`~simtools.persistence.FormatError`.
    """
    faiss = _faiss()
    try:
        kind = _check_kind(config["kind"])
        inner_metric = config["inner_metric"]
        dim = int(config["dim"])
        ntotal = int(config["ntotal"])
        options = dict(config.get("options") or {})
        version = config.get("backend_format_version", _FORMAT_VERSION)
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"the FAISS backend config in {folder} is incomplete or wrong ({e}); "
                          "rebuild or re-save the index") from e
    if version != _FORMAT_VERSION:
        raise FormatError(f"FAISS backend format version {version!r} in {folder}; this simtools "
                          f"reads version {_FORMAT_VERSION}. Re-create the index.")
    path = member(folder, config.get("file", INDEX_FILE))
    expected = config.get("file_bytes")
    if expected is not None and path.stat().st_size != int(expected):
        raise FormatError(f"{path} has {path.stat().st_size} bytes but {expected} were written; "
                          "the file is truncated or was replaced. Rebuild or re-save the index.")
    flag = getattr(faiss, "IO_FLAG_MMAP_IFC", None) if mmap else None
    try:
        index = faiss.read_index(str(path), flag) if flag is not None else faiss.read_index(str(path))
    except (RuntimeError, MemoryError, OverflowError) as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise FormatError(f"{path} is corrupted or truncated; FAISS could not read it ({first}). "
                          "Rebuild or re-save the index.") from e
    if index.d != dim or index.ntotal != ntotal:
        raise FormatError(f"{path} holds {index.ntotal} vectors of dimension {index.d}, but the "
                          f"config says {ntotal} of dimension {dim}; the folder is inconsistent")
    if kind is BackendKind.IVF:
        backend: FaissBackend = _kinds()[kind](dim, inner_metric, **options)
    else:
        backend = make_backend(kind, dim, inner_metric, **options)
    backend._index = index
    backend._mapped = flag is not None
    backend._apply_search_params(index)
    return backend
