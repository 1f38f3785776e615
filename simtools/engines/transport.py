"""A fitted encoder as bytes, to hand to worker processes or Ray actors (no pickle: the
encoder's own saved files, which each worker writes to a folder of its own and loads once)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["encoder_files", "load_encoder_files"]


def encoder_files(encoder: Any) -> dict[str, bytes]:
    """The files ``encoder.save_into`` writes, by relative path."""
    with tempfile.TemporaryDirectory(prefix="simtools-encoder-") as tmp:
        encoder.save_into(Path(tmp))
        files = {}
        for root, _, names in os.walk(tmp):
            for name in names:
                path = Path(root) / name
                files[path.relative_to(tmp).as_posix()] = path.read_bytes()
        return files


def load_encoder_files(files: dict[str, bytes]) -> Any:
    """The encoder saved as ``files`` (see :func:`encoder_files`)."""
    from ..encoders.base import load_encoder

    with tempfile.TemporaryDirectory(prefix="simtools-encoder-") as tmp:
        for relative, data in files.items():
            if Path(relative).is_absolute() or ".." in Path(relative).parts:
                raise ValueError(f"encoder file {relative!r} is outside its folder")
            path = Path(tmp) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return load_encoder(tmp)
