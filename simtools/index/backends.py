"""Which backend serves an index: exact (dense BLAS or sparse scipy on the CPU, dense torch on
a GPU) or a FAISS kind, created new or read back from a folder.

The backend asked for is the backend served: ``exact`` stays exact on a GPU machine (there it
runs on torch when ``device`` resolves to ``cuda``) and is saved as ``exact``, so the folder
loads on a machine without a GPU. FAISS and torch are imported only here, and only when asked
for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from .backend import Backend, BackendKind, InnerMetric
from .device import Device, resolve_device

__all__ = ["load_backend", "make_backend"]


def make_backend(kind: BackendKind, dim: int, inner: InnerMetric, sparse: bool,
                  options: dict[str, Any], *, device: Device | str = Device.AUTO,
                  dtype: str = "float32") -> Backend:
    if kind is BackendKind.EXACT:
        from .exact import ExactDense, ExactSparse

        if sparse:
            resolve_device(device, sparse=True)  # device='cuda' on sparse vectors: an error
            _check_cpu_dtype(dtype)
            return ExactSparse(dim, inner)
        return _on_device(ExactDense(dim, inner), device, dtype)
    _check_faiss_device(kind, device, dtype)
    if sparse:
        raise ValueError(f"backend {kind.value!r} needs dense vectors, but this encoder is sparse; "
                         "use backend='exact', or a dense encoder (minilm, student)")
    from .faiss import make_backend

    return make_backend(kind.value, dim, inner.value, **options)


def load_backend(folder: Path, config: dict[str, Any], mmap: bool, *,
                 device: Device | str = Device.AUTO, dtype: str = "float32") -> Backend:
    if config.get("kind") == BackendKind.EXACT.value:
        from .exact import ExactDense, ExactSparse

        if config.get("sparse"):
            resolve_device(device, sparse=True)
            _check_cpu_dtype(dtype)
            return ExactSparse.load(folder, config, mmap=mmap)
        return _on_device(ExactDense.load(folder, config, mmap=mmap), device, dtype)
    _check_faiss_device(BackendKind(config.get("kind")), device, dtype)
    from .faiss import load_backend

    return load_backend(folder, config, mmap=mmap)


def _on_device(backend: Any, device: Device | str, dtype: str) -> Backend:
    """An exact dense backend where ``device`` resolves: itself on the CPU, torch on a GPU."""
    if resolve_device(device) is Device.CUDA:
        from .torch_exact import GPU_DEVICE, TorchExactDense

        return TorchExactDense.from_host(backend, device=GPU_DEVICE, dtype=dtype)
    _check_cpu_dtype(dtype)
    return backend  # type: ignore[no-any-return]


def _check_cpu_dtype(dtype: str) -> None:
    if dtype != "float32":
        raise InputError(f"dtype={dtype!r} is for GPU search (device='cuda'); CPU search keeps "
                         "its vectors in float32, so leave dtype out")


def _check_faiss_device(kind: BackendKind, device: Device | str, dtype: str) -> None:
    """``device`` and ``dtype`` choose where *exact* search runs; FAISS decides for its kinds."""
    if Device(device) is not Device.AUTO or dtype != "float32":
        raise InputError(f"device and dtype apply to backend='exact'; backend={kind.value!r} "
                         "runs where the FAISS build runs it (faiss-gpu: on every GPU), so "
                         "leave them out")


def move_backend(backend: Backend, device: Device | str, dtype: str) -> Backend:
    """``backend`` served on ``device`` (exact dense rows are shared, not copied)."""
    from .exact import ExactDense, ExactSparse

    if isinstance(backend, ExactDense):
        host = backend
        if type(backend) is not ExactDense:  # a torch backend: back to its host rows first
            host = ExactDense(backend.dim, backend.inner_metric)
            host._X = backend.vectors
        return _on_device(host, device, dtype)
    if isinstance(backend, ExactSparse):
        resolve_device(device, sparse=True)
        _check_cpu_dtype(dtype)
        return backend
    kind = getattr(backend, "kind", None)
    if kind in (BackendKind.FLAT, BackendKind.HNSW, BackendKind.IVF):
        _check_faiss_device(kind, device, dtype)
    elif Device(device) is Device.CUDA or dtype != "float32":
        raise InputError(f"device={Device(device).value!r} and dtype={dtype!r} are not "
                         f"available for a {type(backend).__name__}; leave them out "
                         "(it searches on the CPU)")
    return backend
