"""Versioned folders: how a saved object (index, encoder, model) is written while others read it.

The folder the user names holds::

    config.json        the manifest: the kind, the current version's name, every file's sha256
    v3-1f2e3d4c/       the current version: the object's own files, never changed once written
    .simtools.lock     present while one process saves (its pid and host, for the error message)

A save writes a new version beside the current one, hidden until complete
(``.v4-9a8b7c6d.tmp/``), fsyncs it, renames it to ``v4-9a8b7c6d/`` and then replaces
``config.json`` with one ``os.replace``: the only step a reader can observe, so a reader sees
the old index or the new one, never a mix, and a crash at any point leaves the old one current.
A reader takes a shared lock on the version it opens (``.readers`` inside it) and checks every
file against the manifest's checksums before the object is built from them. The next save
removes old versions that no reader holds and temporaries that no live writer holds (a killed
save). Two writers at once are refused: the second gets :class:`FolderInUseError`.

Nothing here deletes a file simtools did not write: an existing folder is saved into only if it
is empty or a simtools folder of the same kind; ``force=True`` also replaces a simtools folder of
another kind and saves beside foreign files (left untouched), but never over a foreign
``config.json``. Folders of simtools 0.1 (the object's files directly in the folder) are read as
they are, and the first save into one converts it, removing only the files 0.1 wrote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import FolderInUseError, FormatError, OutputExistsError
from .persistence import CONFIG_NAME, UMASK, atomic_write, file_digest, member, read_json

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: saves stay atomic, concurrency is not guarded
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderWriter", "check_output", "current_version", "open_folder", "save_folder"]

logger = logging.getLogger(__name__)

LAYOUT = "versioned"
LAYOUT_VERSION = 1
LOCK_NAME = ".simtools.lock"
READERS_NAME = ".readers"
_VERSION = re.compile(r"v(\d{1,12})-[0-9a-f]{8}")
_TEMP = re.compile(r"\.v\d{1,12}-[0-9a-f]{8}\.tmp")
# persistence.atomic_write's temporary for the manifest (mkstemp: prefix, random part, suffix)
_MANIFEST_TEMP = re.compile(r"\.config\.json\.[A-Za-z0-9_]{1,32}\.tmp")
# What simtools 0.1 wrote directly into a folder: the only entries a conversion removes.
_LEGACY_NAMES = frozenset({
    "config.json", "documents.jsonl", "norms.npy", "encoder", "vectors.npy",
    "vectors.safetensors", "index.faiss", "wiki_build.json", "encoder.safetensors",
    "model.safetensors", "history.json",
})
_OPEN_ATTEMPTS = 50
_LEGACY_DEBRIS_AGE = 3600.0  # seconds


def _is_manifest(config: Any) -> bool:
    return isinstance(config, dict) and config.get("layout") == LAYOUT


def _ours(name: str) -> bool:
    """Entries of a versioned folder's own machinery (besides ``config.json``)."""
    return name == LOCK_NAME or any(
        pattern.fullmatch(name) for pattern in (_VERSION, _TEMP, _MANIFEST_TEMP))


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


# -- what an output path holds ----------------------------------------------------------------
def _survey(path: Path) -> tuple[str, Any]:
    """What ``path`` holds: ("new" | "empty" | "simtools" | "foreign config" | "foreign", detail).

    For "simtools" the detail is ``(kind, config)``; for "foreign" the foreign entry names.
    """
    if not os.path.lexists(path):
        return "new", None
    if not path.is_dir():
        what = "a broken symbolic link" if path.is_symlink() else "a file"
        raise OutputExistsError(f"{path} is {what}, not a folder")
    names = sorted(os.listdir(path))
    if CONFIG_NAME in names:
        try:
            config = read_json(path / CONFIG_NAME)
        except FormatError:
            config = None
        if isinstance(config, dict) and isinstance(config.get("kind"), str) and (
                _is_manifest(config) or "format_version" in config):
            return "simtools", (config["kind"], config)
        return "foreign config", None
    foreign = [name for name in names if not _ours(name)]
    return ("foreign", foreign) if foreign else ("empty", None)


def check_output(path: str | os.PathLike[str], *, kind: str, force: bool = False) -> None:
    """Raise :class:`OutputExistsError` unless a ``kind`` may be saved at ``path``.

    Allowed: a new path, an empty folder, a simtools ``kind`` folder (a new version replaces the
    current one). With ``force``: also a simtools folder of another kind (replaced) and a folder
    of foreign files without a ``config.json`` (saved beside them; they are left untouched).
    Call it before long work, so that a bad output path fails at once.
    """
    path = Path(path)
    state, detail = _survey(path)
    if state == "foreign config":
        raise OutputExistsError(
            f"{path} holds a config.json that simtools did not write (simtools never overwrites "
            "files it did not write, even when forced)")
    if state == "simtools" and detail[0] != kind and not force:
        raise OutputExistsError(f"{path} holds a simtools {detail[0]}, not {_article(kind)}",
                                force_does=f"replace that {detail[0]}")
    if state == "foreign" and not force:
        sample = ", ".join(repr(name) for name in detail[:3])
        more = ", ..." if len(detail) > 3 else ""
        raise OutputExistsError(
            f"{path} is not empty and is not a simtools folder (it holds {len(detail)} "
            f"entr{'y' if len(detail) == 1 else 'ies'}: {sample}{more})",
            force_does="save beside those files (they are left untouched)")


# -- writing ----------------------------------------------------------------------------------
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


# -- reading ----------------------------------------------------------------------------------
def _recover_interrupted_swap(folder: Path) -> None:
    """simtools 0.1 swapped folders with two renames; a crash between them left the target
    missing and the previous copy hidden as ``.NAME.old-*``. Put the newest such copy back."""
    if os.path.lexists(folder) or not folder.parent.is_dir():
        return
    olds = [p for p in folder.parent.glob(f".{folder.name}.old-*")
            if p.is_dir() and not p.is_symlink() and (p / CONFIG_NAME).is_file()]
    if olds:
        newest = max(olds, key=lambda p: p.stat().st_mtime)
        with contextlib.suppress(OSError):
            os.rename(newest, folder)
            logger.warning("%s was missing after an interrupted save; restored it from %s",
                           folder, newest.name)


def _remove_legacy_debris(folder: Path) -> None:
    """simtools 0.1 saved through hidden copies beside the folder (``.NAME.tmp-XXXXXXXX``,
    ``.NAME.old-XXXXXXXX``) and a killed save left them behind. Remove those an hour old or
    more: 0.1 took no lock, so a younger one may still belong to a save in progress."""
    pattern = re.compile(rf"\.{re.escape(folder.name)}\.(tmp|old)-[a-z0-9_]{{8}}")
    cutoff = time.time() - _LEGACY_DEBRIS_AGE
    with contextlib.suppress(OSError):
        for entry in os.listdir(folder.parent):
            path = folder.parent / entry
            if (pattern.fullmatch(entry) and not path.is_symlink() and path.is_dir()
                    and path.stat().st_mtime < cutoff):
                shutil.rmtree(path, ignore_errors=True)
                logger.info("removed %s, left by an interrupted save of simtools 0.1", path)


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
