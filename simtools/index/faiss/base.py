"""The FAISS backend base class: validation, the GPU replica, mmap copy-on-write, save."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from simtools._validation import check_choice, check_int, check_vectors
from simtools.index.backend import BackendKind, InnerMetric
from simtools.persistence import FormatError, member

from .common import FORMAT_VERSION, INDEX_FILE, gpu_available, import_faiss

__all__ = ["KINDS", "FaissBackend", "load_backend", "make_backend"]

logger = logging.getLogger(__name__)


#: every FAISS backend by kind, filled as each subclass is defined (flat.py, ivf.py)
KINDS: dict[BackendKind, type[FaissBackend]] = {}


class FaissBackend:
    """Shared machinery: validation, the GPU replica, mmap copy-on-write, save and load."""

    kind: BackendKind

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        KINDS[cls.kind] = cls

    def __init__(self, dim: int, inner_metric: str | InnerMetric) -> None:
        self._faiss = import_faiss()
        self._dim = check_int(dim, "dim")
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
        k = check_int(k, "k")
        self._before_search()
        index = self._searcher()
        if index.ntotal == 0:
            scores = np.empty((Q.shape[0], k), dtype=np.float32)
            scores.fill(self._missing_score)
            return scores, np.full((Q.shape[0], k), -1, dtype=np.int64)
        scores, positions = index.search(Q, k)  # float32 and int64, C-contiguous
        if positions.min() < 0:
            # FAISS pads with +-FLT_MAX; make it explicit
            scores[positions < 0] = self._missing_score
        return scores, positions

    def save(self, folder: Path) -> dict[str, Any]:
        """Write ``folder/index.faiss`` (always a CPU index) and return the JSON config."""
        self._before_search()  # an IVF buffer is trained and flushed so nothing is lost
        path = Path(folder) / INDEX_FILE
        self._faiss.write_index(self._index, str(path))
        return {
            "backend_format_version": FORMAT_VERSION,
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
        if not gpu_available(self._faiss):
            return self._index
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
    return KINDS[found](dim, inner_metric, **options)


def load_backend(folder: Path, config: dict[str, Any], *, mmap: bool = True) -> FaissBackend:
    """Read a backend written by :meth:`FaissBackend.save` from ``folder``.

    With ``mmap=True`` the file is memory-mapped (FAISS ``IO_FLAG_MMAP_IFC``), so opening a large
    index is instant and its pages are shared between processes; the first write copies it into
    memory. A missing, truncated or corrupted file raises :class:`~simtools.persistence.FormatError`.
    """
    faiss = import_faiss()
    try:
        kind = _check_kind(config["kind"])
        inner_metric = config["inner_metric"]
        dim = int(config["dim"])
        ntotal = int(config["ntotal"])
        options = dict(config.get("options") or {})
        version = config.get("backend_format_version", FORMAT_VERSION)
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"the FAISS backend config in {folder} is incomplete or wrong ({e}); "
                          "rebuild or re-save the index") from e
    if version != FORMAT_VERSION:
        raise FormatError(f"FAISS backend format version {version!r} in {folder}; this simtools "
                          f"reads version {FORMAT_VERSION}. Re-create the index.")
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
    try:
        backend = make_backend(kind, dim, inner_metric, **options)
    except (TypeError, ValueError) as e:
        raise FormatError(f"the FAISS backend config in {folder} has options this simtools "
                          f"cannot use ({e}); rebuild or re-save the index") from e
    backend._index = index
    backend._mapped = flag is not None
    backend._apply_search_params(index)
    return backend
