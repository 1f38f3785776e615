"""Saving: the writer lock, sealing a version (fsync, checksums) and publishing it."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import FolderInUseError
from ..persistence import CONFIG_NAME, UMASK, atomic_write, file_digest
from .layout import (
    _LEGACY_NAMES,
    _MANIFEST_TEMP,
    _TEMP,
    _VERSION,
    LAYOUT,
    LAYOUT_VERSION,
    LOCK_NAME,
    READERS_NAME,
    _is_manifest,
    _recover_interrupted_swap,
    _remove_legacy_debris,
    _survey,
    check_output,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: saves stay atomic, concurrency is not guarded
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderWriter", "save_folder"]


def _owner() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _lock_writer(folder: Path) -> int | None:
    """Take ``folder``'s writer lock (an exclusive ``flock``, freed by the kernel if we die)."""
    if fcntl is None:  # pragma: no cover
        return None
    path = folder / LOCK_NAME
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            raise FolderInUseError(
                f"{folder} is being saved by another process ({owner}); wait for it to finish, "
                "or save somewhere else") from None
        # The previous owner unlinks the file when it is done: if that happened between our
        # open and our flock, we hold a lock on a file nobody else will see. Start again.
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(_owner()).encode())
            return fd
        os.close(fd)
    raise FolderInUseError(f"{folder}: could not take its lock; other processes keep saving it")


def _read_owner(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {int(info['pid'])} on {str(info['host'])[:64]} since {str(info['since'])[:20]}"
    except (ValueError, KeyError, TypeError, OSError):
        return "owner unknown"


def _unlock_writer(folder: Path, fd: int | None) -> None:
    if fd is None:  # pragma: no cover
        return
    with contextlib.suppress(OSError):
        os.unlink(folder / LOCK_NAME)
    os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _seal(folder: Path) -> dict[str, dict[str, Any]]:
    """Fix permissions, fsync and checksum every file under ``folder``; returns the file table."""
    umask = UMASK
    files: dict[str, dict[str, Any]] = {}
    for root, dirs, names in os.walk(folder):
        root_path = Path(root)
        root_path.chmod(0o777 & ~umask)
        for name in sorted(dirs + names):
            path = root_path / name
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                raise ValueError(f"{path} is not a regular file; a saved folder holds files only")
            path.chmod(0o666 & ~umask)
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
            files[path.relative_to(folder).as_posix()] = {
                "bytes": info.st_size, "sha256": file_digest(path)}
        _fsync_dir(root_path)
    return files


class FolderWriter:
    """The one process saving into a folder: holds its lock from construction to :meth:`close`.

    Each :meth:`version` block writes one complete new version and makes it current on success.
    A long build that saves checkpoints keeps one writer open, so no other process can save into
    the folder in between.
    """

    def __init__(self, path: str | os.PathLike[str], *, kind: str, force: bool = False) -> None:
        self.path = Path(path)
        self.kind = kind
        _recover_interrupted_swap(self.path)
        check_output(self.path, kind=kind, force=force)
        self.path.mkdir(parents=True, exist_ok=True)
        self._fd = _lock_writer(self.path)
        self._closed = False
        try:
            self._remove_stale()
            _remove_legacy_debris(self.path)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _unlock_writer(self.path, self._fd)

    def __enter__(self) -> FolderWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _manifest(self) -> dict[str, Any] | None:
        state, detail = _survey(self.path)
        if state == "simtools" and _is_manifest(detail[1]):
            return detail[1]
        return None

    @contextlib.contextmanager
    def version(self) -> Iterator[Path]:
        """Yield an empty folder to write the object's files into; on success it becomes the
        current version (one atomic ``config.json`` swap). On any exception nothing changes."""
        if self._closed:
            raise ValueError("this folder writer is closed")
        before = _survey(self.path)
        previous = self._manifest()
        number = int(previous["version"]) + 1 if previous else 1
        name = f"v{number}-{secrets.token_hex(4)}"
        tmp = self.path / f".{name}.tmp"
        final = self.path / name
        tmp.mkdir()
        published = False
        try:
            yield tmp
            files = _seal(tmp)
            (tmp / READERS_NAME).touch()
            _fsync_dir(tmp)
            os.rename(tmp, final)
            _fsync_dir(self.path)
            manifest = {"kind": self.kind, "layout": LAYOUT, "layout_version": LAYOUT_VERSION,
                        "version": number, "current": name, "files": files,
                        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            text = json.dumps(manifest, ensure_ascii=False, indent=1) + "\n"
            atomic_write(self.path / CONFIG_NAME, lambda handle: handle.write(text.encode()))
            published = True
            _fsync_dir(self.path)
        finally:
            if not published:
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.rmtree(final, ignore_errors=True)
        if before[0] == "simtools" and not _is_manifest(before[1][1]):
            self._remove_legacy_files()
        self._remove_old_versions(keep=name)

    # -- clean-up (only ever of entries this module names) ------------------------------------
    def _remove_stale(self) -> None:
        """Temporaries of saves that died: we hold the writer lock, so no live process owns one."""
        for entry in os.listdir(self.path):
            if _TEMP.fullmatch(entry):
                shutil.rmtree(self.path / entry, ignore_errors=True)
            elif _MANIFEST_TEMP.fullmatch(entry) and (self.path / entry).is_file():
                with contextlib.suppress(OSError):
                    (self.path / entry).unlink()
        current = self._manifest()
        self._remove_old_versions(keep=current["current"] if current else None)

    def _remove_old_versions(self, *, keep: str | None) -> None:
        for entry in os.listdir(self.path):
            if entry == keep or not _VERSION.fullmatch(entry):
                continue
            path = self.path / entry
            if path.is_symlink() or not path.is_dir():
                continue
            with _exclusive(path) as free:
                if free:
                    shutil.rmtree(path, ignore_errors=True)

    def _remove_legacy_files(self) -> None:
        for entry in _LEGACY_NAMES - {CONFIG_NAME}:
            path = self.path / entry
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                with contextlib.suppress(OSError):
                    path.unlink()


@contextlib.contextmanager
def _exclusive(version: Path) -> Iterator[bool]:
    """Whether no reader holds ``version`` (and none can start while the block runs)."""
    if fcntl is None:  # pragma: no cover
        yield True
        return
    try:
        fd = os.open(version / READERS_NAME, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        yield True  # a version whose removal was itself interrupted
        return
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


@contextlib.contextmanager
def save_folder(path: str | os.PathLike[str], *, kind: str, force: bool = False) -> Iterator[Path]:
    """Save one version of a ``kind`` into ``path``: yields the folder to write the files into.

    See :func:`check_output` for which existing folders may be saved into, and the module
    docstring for what readers see meanwhile.
    """
    with FolderWriter(path, kind=kind, force=force) as writer, writer.version() as folder:
        yield folder
