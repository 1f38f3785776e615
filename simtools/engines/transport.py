"""A fitted encoder, or a saved model folder, as bytes for worker processes or Ray actors (no
pickle: the saved files, which each worker writes to a folder of its own and loads once)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["encoder_files", "folder_files", "load_encoder_files", "write_files"]


def folder_files(folder: str | os.PathLike[str]) -> dict[str, bytes]:
    """Every file under ``folder``, by relative path."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def write_files(files: dict[str, bytes], folder: str | os.PathLike[str]) -> None:
    """Write ``files`` (from :func:`folder_files`) under ``folder``; none may leave it."""
    for relative, data in files.items():
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise ValueError(f"file {relative!r} is outside its folder")
        path = Path(folder) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def encoder_files(encoder: Any) -> dict[str, bytes]:
    """The files ``encoder.save_into`` writes, by relative path."""
    with tempfile.TemporaryDirectory(prefix="simtools-encoder-") as tmp:
        encoder.save_into(Path(tmp))
        return folder_files(tmp)


def load_encoder_files(files: dict[str, bytes]) -> Any:
    """The encoder saved as ``files`` (see :func:`encoder_files`)."""
    from ..encoders.base import load_encoder

    with tempfile.TemporaryDirectory(prefix="simtools-encoder-") as tmp:
        write_files(files, tmp)
        return load_encoder(tmp)
