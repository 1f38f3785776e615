"""The files inside a saved folder: ``config.json``, safetensors arrays, ``.npy`` and JSON.

Every saved object (encoder, index, model) is a folder; :mod:`simtools.folders` decides where
its files go and swaps versions atomically, this module reads and writes the files themselves.
Reading treats every file as hostile: only regular files directly inside the folder are opened
(no symlink, FIFO or ``../``), JSON depth and numbers are bounded, and an array header that
claims more data than the file holds is an error before any memory is taken. Nothing here uses
pickle: a folder handed to a user can only ever contain JSON and raw tensors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from .errors import FormatError

__all__ = [
    "FormatError",
    "atomic_write",
    "file_digest",
    "load_arrays",
    "load_npy",
    "loads_json",
    "member",
    "read_config",
    "read_json",
    "save_arrays",
    "write_json",
]

CONFIG_NAME = "config.json"
# Deeper JSON than this is refused before the parser recurses (Python's limit is about 1,000).
MAX_JSON_DEPTH = 200
# Read once, at import: os.umask can only be read by setting it, which races with other threads.
UMASK = os.umask(0o022)
os.umask(UMASK)
_SAFE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}")


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> None:
    """Write one file atomically: ``write(handle)`` fills a temporary file beside ``path``,
    which then replaces ``path``; on any error the temporary file is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); the result gets the mode of any new file.
        os.fchmod(fd, 0o666 & ~UMASK)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as UTF-8 JSON (used inside an :func:`atomic_folder`)."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=1)
        handle.write("\n")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number simtools writes")


def loads_json(text: str | bytes, *, where: str) -> Any:
    """Parse JSON as simtools writes it; anything else is a :class:`FormatError` naming ``where``.

    Numbers must be finite (``1e999``, ``NaN`` and ``Infinity`` are refused, so no ``inf`` ever
    reaches an ``int()``) and nesting beyond the interpreter's depth is an error, not a crash.
    """
    try:
        return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)
    except RecursionError:
        raise FormatError(f"{where} is nested too deeply to be a simtools file; rebuild or "
                          "re-save it") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise FormatError(f"{where} is corrupted ({e}); rebuild or re-save it") from e


def member(folder: str | os.PathLike[str], name: str, *, required: bool = True) -> Path:
    """``folder/name`` once it is known to be a regular file inside ``folder``.

    ``name`` comes from a config a user may have been handed, so it must be a plain relative
    path (no ``..``, no absolute path) and no part of it may be a symlink; the file itself must
    be regular (a FIFO would block the reader forever). ``required=False`` returns the path of
    an absent file instead of raising, for optional files.
    """
    folder = Path(folder)
    parts = name.split("/") if isinstance(name, str) else []
    if not parts or not all(_SAFE_PART.fullmatch(part) for part in parts):
        raise FormatError(f"{folder} names the file {name!r}, which is not a plain file name "
                          "inside the folder; the folder was edited or is not a simtools folder")
    path = folder
    for i, part in enumerate(parts):
        path = path / part
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            if required:
                raise FormatError(f"{path} is missing; the folder is incomplete or not a "
                                  "simtools folder") from None
            return folder / name
        except OSError as e:
            raise FormatError(f"{path} cannot be read ({e.strerror})") from e
        last = i == len(parts) - 1
        if stat.S_ISLNK(info.st_mode):
            raise FormatError(f"{path} is a symbolic link; simtools only reads files that are "
                              "inside the folder itself")
        if last and not stat.S_ISREG(info.st_mode):
            raise FormatError(f"{path} is not a regular file; the folder is damaged")
        if not last and not stat.S_ISDIR(info.st_mode):
            raise FormatError(f"{path} is not a folder; the folder is damaged")
    return path


def _regular(path: Path) -> Path:
    """``path`` itself must be a regular file (not a symlink, FIFO or device)."""
    return member(path.parent, path.name)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, turning every failure into a :class:`FormatError` that names the file."""
    path = _regular(Path(path))
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FormatError(f"{path} cannot be read ({e.strerror}); rebuild or re-save it") from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{path} is corrupted ({e}); rebuild or re-save it") from e
    return loads_json(text, where=str(path))


def file_digest(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, in hex (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        block = bytearray(1 << 20)
        view = memoryview(block)
        while n := handle.readinto(block):
            digest.update(view[:n])
    return digest.hexdigest()


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

    path = _regular(Path(path))
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, MemoryError, OverflowError) as e:
        raise FormatError(f"{path} is corrupted or truncated ({e}); rebuild or re-save it") from e


def load_npy(path: str | os.PathLike[str], *, mmap: bool = False) -> np.ndarray:
    """Read a ``.npy`` array (no pickle); a header that disagrees with the file's size, or any
    damage, is a :class:`FormatError` before memory for the claimed shape is taken."""
    path = _regular(Path(path))
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = reader(handle)
            header_end = handle.tell()
        size = os.path.getsize(path)
        if dtype.hasobject:
            raise ValueError("it holds Python objects, which simtools never writes")
        claimed = math.prod(shape) * dtype.itemsize
        if claimed != size - header_end:
            raise ValueError(f"its header claims {shape} {dtype} ({claimed} bytes) but the file "
                             f"holds {size - header_end} bytes of data")
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, MemoryError, OverflowError, EOFError) as e:
        raise FormatError(f"{path} is corrupted or truncated ({e}); rebuild or re-save it") from e
