"""Where exact dense search runs: ``auto`` (a GPU when torch sees one), ``cpu`` or ``cuda``.

The device is a choice made each time an index is built or loaded, never saved with it: a
folder written on a GPU machine is the same ``exact`` folder as one written without a GPU,
and loads on either. Checking for a GPU imports torch (a second or more) only on a machine
with an NVIDIA driver; elsewhere ``auto`` is the CPU at once.
"""

from __future__ import annotations

import importlib.util
import os
from enum import Enum
from typing import Any

from ..errors import InputError

__all__ = ["Device", "cuda_available", "import_torch", "resolve_device"]


class Device(str, Enum):
    """Where exact dense search runs."""

    AUTO = "auto"  # the GPU when torch sees one, else the CPU (NumPy)
    CPU = "cpu"  # NumPy and BLAS
    CUDA = "cuda"  # torch on the first GPU


def import_torch() -> Any:
    """Import torch, or say which extra to install."""
    try:
        import torch
    except ImportError as e:
        raise ImportError("GPU search needs torch, which is not installed; run: pip install "
                          "'simtools[train]' (the CUDA build), or use device='cpu'") from e
    return torch


def _driver_present() -> bool:
    """Whether this machine has an NVIDIA driver at all (cheap: no torch import)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/nvidia0")


def cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA GPU."""
    if not _driver_present() or importlib.util.find_spec("torch") is None:
        return False
    return bool(import_torch().cuda.is_available())


def resolve_device(device: Device | str, *, sparse: bool = False) -> Device:
    """``cpu`` or ``cuda`` for a requested device; ``cuda`` without a GPU is an InputError."""
    device = Device(device)
    if device is Device.AUTO:
        return Device.CUDA if not sparse and cuda_available() else Device.CPU
    if device is Device.CUDA:
        if sparse:
            raise InputError("device='cuda' searches dense vectors, but this index is sparse "
                             "(a word or character encoder); use device='cpu' or 'auto'")
        import_torch()  # a missing torch says which extra to install
        if not cuda_available():
            raise InputError("device='cuda' was asked for, but torch sees no CUDA GPU on this "
                             "machine; use device='cpu' or device='auto'")
    return device
