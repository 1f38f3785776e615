"""What every FAISS backend shares: importing FAISS, its metric codes, defaults, GPU detection."""

from __future__ import annotations

from typing import Any

from simtools._validation import check_int
from simtools.index.backend import InnerMetric

__all__ = ["DEFAULT_EF_CONSTRUCTION", "DEFAULT_EF_SEARCH", "DEFAULT_M", "DEFAULT_NPROBE",
           "DEFAULT_PQ_BITS", "FORMAT_VERSION", "INDEX_FILE", "MIN_POINTS_PER_CENTROID",
           "faiss_metric", "gpu_available", "import_faiss", "int_knob"]

INDEX_FILE = "index.faiss"
FORMAT_VERSION = 1
MIN_POINTS_PER_CENTROID = 39  # below this FAISS warns that k-means is under-trained

# Defaults measured with benchmarks/bench_ann.py (README, "Approximate search"): on 100k x 384
# clustered unit vectors, ef_search 64 gave recall@10 0.993 at 12x exact search (32 gave 0.954)
# and nprobe 16 gave 1.000 at 34x (8 gave 0.927); both keep a margin for real embeddings.
DEFAULT_M = 32
DEFAULT_EF_CONSTRUCTION = 200
DEFAULT_EF_SEARCH = 64
DEFAULT_NPROBE = 16
DEFAULT_PQ_BITS = 8


def import_faiss() -> Any:
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
    faiss = faiss if faiss is not None else import_faiss()
    if not hasattr(faiss, "StandardGpuResources"):
        return False
    try:
        return int(faiss.get_num_gpus()) > 0
    except (AttributeError, RuntimeError):
        return False


def faiss_metric(faiss: Any, inner_metric: InnerMetric) -> int:
    return faiss.METRIC_INNER_PRODUCT if inner_metric is InnerMetric.IP else faiss.METRIC_L2


def int_knob(name: str, doc: str) -> Any:
    """A search-time knob: a property that keeps a positive int in ``_<name>``, checked on set."""
    attr = f"_{name}"

    def get(self: Any) -> int:
        return getattr(self, attr)

    def set_(self: Any, value: int) -> None:
        setattr(self, attr, check_int(value, name))

    return property(get, set_, doc=doc)


