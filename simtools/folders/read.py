"""Reading: the current version, held by a shared lock and checked against the manifest."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..persistence import CONFIG_NAME, file_digest, member, read_json
from .layout import (
    _OPEN_ATTEMPTS,
    _VERSION,
    LAYOUT_VERSION,
    READERS_NAME,
    _article,
    _is_manifest,
    _ours,
    _recover_interrupted_swap,
)

try:
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["current_version", "open_folder"]


def _verify(version: Path, files: Any, manifest_path: Path) -> None:
    """Every file of ``version`` is in the manifest with its size and checksum, and vice versa."""
    if not isinstance(files, dict):
        raise FormatError(f"{manifest_path} has no file table; the folder is damaged")
    found: set[str] = set()
    for root, dirs, names in os.walk(version):
        for name in dirs + names:
            path = Path(root) / name
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode):
                continue
            relative = path.relative_to(version).as_posix()
            if relative == READERS_NAME:
                continue
            if relative not in files:
                raise FormatError(f"{path} is not part of the saved folder (the manifest "
                                  f"{manifest_path} does not name it); remove it or re-save")
            found.add(relative)
    for relative, expected in files.items():
        path = member(version, relative)  # regular, inside, no symlink: or FormatError
        try:
            size, digest = int(expected["bytes"]), str(expected["sha256"])
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{manifest_path} is damaged ({e}); re-save the folder") from e
        if path.stat().st_size != size or file_digest(path) != digest:
            raise FormatError(f"{path} does not match the checksum in {manifest_path}: it was "
                              "changed or damaged after saving; rebuild or re-save it")


def _lock_reader(version: Path) -> int | None:
    """A shared lock on ``version``, or None when it no longer exists (replaced meanwhile)."""
    try:
        fd = os.open(version / READERS_NAME, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise FormatError(f"{version / READERS_NAME} cannot be opened ({e.strerror})") from e
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_SH)
    # A writer may have removed the version between our open and our lock.
    try:
        alive = os.stat(version / READERS_NAME, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        alive = False
    if not alive:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def open_folder(path: str | os.PathLike[str], *, kind: str) -> Iterator[Path]:
    """Yield the folder holding the current files of the ``kind`` saved at ``path``.

    For a versioned folder this is its current version, checked against the manifest and held
    (no save removes it) until the block ends; a simtools 0.1 folder is yielded as it is. The
    object's own ``config.json`` (kind, format version) is read by its loader as before.
    """
    folder = Path(path)
    _recover_interrupted_swap(folder)
    if not folder.exists():
        raise FormatError(f"{folder} does not exist; check the path")
    if not folder.is_dir():
        raise FormatError(f"{folder} is a file, but a simtools {kind} is a folder")
    for _ in range(_OPEN_ATTEMPTS):
        manifest_path = folder / CONFIG_NAME
        if not os.path.lexists(manifest_path) and any(_ours(n) for n in os.listdir(folder)):
            raise FormatError(f"{folder} holds no saved {kind} yet: its first save was "
                              "interrupted; save it again")
        manifest = read_json(manifest_path)
        if not _is_manifest(manifest):
            yield folder
            return
        found = manifest.get("kind")
        if found != kind:
            raise FormatError(f"{folder} holds a simtools {found!r}, not {_article(kind)}")
        if manifest.get("layout_version") != LAYOUT_VERSION:
            raise FormatError(f"{folder} has layout version {manifest.get('layout_version')!r}; "
                              f"this simtools reads {LAYOUT_VERSION}. Upgrade simtools.")
        name = manifest.get("current")
        if not isinstance(name, str) or not _VERSION.fullmatch(name):
            raise FormatError(f"{manifest_path} names no valid current version; the folder is "
                              "damaged")
        version = folder / name
        if version.is_symlink():
            raise FormatError(f"{version} is a symbolic link; simtools only reads files that "
                              "are inside the folder itself")
        fd = _lock_reader(version)
        if fd is None:
            time.sleep(0.005)  # a save replaced the version we read of: read the manifest again
            continue
        try:
            _verify(version, manifest.get("files"), manifest_path)
            yield version
        finally:
            os.close(fd)
        return
    raise FormatError(f"{folder} changed {_OPEN_ATTEMPTS} times while it was being opened; "
                      "try again when the saves pause")


def current_version(path: str | os.PathLike[str]) -> Path:
    """The folder that holds the current files of the object saved at ``path`` (no lock)."""
    folder = Path(path)
    manifest = read_json(folder / CONFIG_NAME)
    if not _is_manifest(manifest):
        return folder
    name = manifest.get("current")
    if not isinstance(name, str) or not _VERSION.fullmatch(name):
        raise FormatError(f"{folder / CONFIG_NAME} names no valid current version")
    return folder / name
