"""Which backend serves an index: exact (dense BLAS or sparse scipy; FAISS flat on a GPU
machine) or a FAISS kind, created new or read back from a folder. FAISS is imported only here,
and only when asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .backend import Backend, BackendKind, InnerMetric

__all__ = ["load_backend", "make_backend"]


def make_backend(kind: BackendKind, dim: int, inner: InnerMetric, sparse: bool,
                  options: dict[str, Any]) -> Backend:
    if kind is BackendKind.EXACT:
        from .exact import ExactDense, ExactSparse

        if sparse:
            return ExactSparse(dim, inner)
        # On a GPU machine exact dense search runs on every GPU through FAISS.
        if _gpu_available():
            from .faiss import make_backend

            return make_backend("flat", dim, inner.value)
        return ExactDense(dim, inner)
    if sparse:
        raise ValueError(f"backend {kind.value!r} needs dense vectors, but this encoder is sparse; "
                         "use backend='exact', or a dense encoder (minilm, student)")
    from .faiss import make_backend

    return make_backend(kind.value, dim, inner.value, **options)


def _gpu_available() -> bool:
    """A FAISS GPU build with at least one GPU; False at once when FAISS is not installed."""
    import importlib.util

    if importlib.util.find_spec("faiss") is None:
        return False
    from .faiss import gpu_available

    return gpu_available()


def load_backend(folder: Path, config: dict[str, Any], mmap: bool) -> Backend:
    if config.get("kind") == BackendKind.EXACT.value:
        from .exact import ExactDense, ExactSparse

        cls = ExactSparse if config.get("sparse") else ExactDense
        return cls.load(folder, config, mmap=mmap)
    from .faiss import load_backend

    return load_backend(folder, config, mmap=mmap)
