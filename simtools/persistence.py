"""Folder persistence: ``config.json`` + safetensors arrays + JSON metadata, written atomically.

Every saved object (encoder, index, model) is a folder. A write goes to a hidden temporary
folder beside the target and is renamed into place only once complete, so an interrupted save
leaves the previous folder intact. Nothing here uses pickle: a folder handed to a user can only
ever contain JSON and raw tensors.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "FormatError",
    "atomic_folder",
    "atomic_write",
    "load_arrays",
    "read_config",
    "read_json",
    "save_arrays",
    "write_json",
]

CONFIG_NAME = "config.json"


class FormatError(ValueError):
    """A saved folder is missing, corrupted, truncated or of an unsupported format version."""


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``path`` atomically.

    On any exception the temporary folder is removed and ``path`` is left as it was.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a folder; choose another output path")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    old: Path | None = None
    try:
        yield tmp
        _fsync_tree(tmp)
        if target.exists():
            # Two renames: the old folder is moved aside first so that the new one can take its
            # name; a crash between them leaves ``.old`` beside a missing target, never a mix.
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            old.rmdir()
            os.replace(target, old)
        os.replace(tmp, target)
    except BaseException:
        # An exception (unlike a crash) between the two renames puts the old folder back.
        if old is not None and old.exists() and not target.exists():
            os.replace(old, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> None:
    """Write one file atomically: ``write(handle)`` fills a temporary file beside ``path``,
    which then replaces ``path``; on any error the temporary file is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fsync_tree(folder: Path) -> None:
    # mkdtemp makes a private (0700) folder; give the result the permissions of any new folder.
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        if path.is_dir():
            path.chmod(0o777 & ~umask)
        elif path.is_file():
            path.chmod(0o666 & ~umask)
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as UTF-8 JSON (used inside an :func:`atomic_folder`)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=1)
        handle.write("\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, turning every failure into a :class:`FormatError` that names the file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as e:
        raise FormatError(f"{path} is missing; the folder is incomplete or not a simtools folder") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(f"{path} is corrupted ({e}); rebuild or re-save it") from e


def read_config(
    folder: str | os.PathLike[str], *, kind: str, versions: tuple[int, ...]
) -> dict[str, Any]:
    """Read ``folder/config.json`` and check its ``kind`` and ``format_version``.

    ``kind`` names what the folder should hold ("index", "encoder", "model"); ``versions`` lists
    the format versions this release can read.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FormatError(f"{folder} does not exist; check the path")
    if not folder.is_dir():
        raise FormatError(f"{folder} is a file, but a simtools {kind} is a folder")
    config = read_json(folder / CONFIG_NAME)
    if not isinstance(config, dict):
        raise FormatError(f"{folder / CONFIG_NAME} is not a JSON object")
    found = config.get("kind")
    if found != kind:
        raise FormatError(f"{folder} holds a simtools {found!r}, not a {kind!r}")
    version = config.get("format_version")
    if version not in versions:
        raise FormatError(
            f"{folder} has format version {version!r}; this simtools reads {list(versions)}. "
            "Re-create it with this version of simtools."
        )
    return config


def save_arrays(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Save named numpy arrays as one safetensors file."""
    from safetensors.numpy import save_file

    save_file({name: np.ascontiguousarray(a) for name, a in arrays.items()}, str(path))


def load_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load a safetensors file into numpy arrays; a truncated or corrupted file is a FormatError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path} is missing; the folder is incomplete")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise FormatError(f"{path} is corrupted or truncated ({e}); rebuild or re-save it") from e
