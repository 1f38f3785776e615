"""A sharded index folder on disk: a manifest, the encoder once, and one index folder per shard.

The folder the user names holds::

    config.json             the manifest: kind "index", layout "sharded", format version, metric,
                            backend, the encoder's folder and, for every shard in position order,
                            its folder, document count and every file's size and sha256
    encoder-1f2e3d4c/       the fitted encoder (absent for a vectors-only index)
    shard-00000-9a8b7c6d/   shard 0: an ordinary index folder (config.json, documents.jsonl,
    shard-00001-5e6f7a8b/   norms.npy, the backend's files) without an encoder of its own
    .simtools.lock          present while one process saves

Shard and encoder folders are immutable once written. A save writes each shard that changed
into a new folder (hidden as ``.shard-00003-xxxxxxxx.tmp`` until sealed: fsynced, checksummed,
renamed), then replaces ``config.json`` with one ``os.replace``: the only step a reader can
observe, so a reader sees the old index or the new one, never a mix. Folders the manifest no
longer names are removed once no reader holds them (a reader takes a shared lock on each shard
it opens, as for :mod:`simtools.folders`). The writer lock is that of
:class:`~simtools.folders.FolderWriter`: two saves into one folder at once are refused.

A sharded manifest has ``format_version`` 2, so simtools releases that read only one-folder
indexes (format 1) refuse it with their own clear message instead of misreading it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..folders import FolderWriter, open_folder
from ..folders.read import _lock_reader, _verify
from ..folders.write import _exclusive, _fsync_dir, _seal
from ..persistence import CONFIG_NAME, atomic_write, member, read_json

__all__ = ["SHARDED_FORMAT_VERSION", "ShardRecord", "ShardStore", "is_sharded", "open_shards",
           "read_manifest", "read_progress", "remove_unlisted"]

LAYOUT = "sharded"
SHARDED_FORMAT_VERSION = 2
READERS = ".readers"
_SHARD = re.compile(r"shard-\d{5,9}-[0-9a-f]{8}")
_ENCODER = re.compile(r"encoder-[0-9a-f]{8}")
_TEMP = re.compile(r"\.(shard-\d{5,9}|encoder)-[0-9a-f]{8}\.tmp")
_OPEN_ATTEMPTS = 50


@dataclass(frozen=True)
class ShardRecord:
    """One saved shard: its folder's name, its document count and its file table."""

    name: str
    count: int
    files: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "files": self.files}

    @classmethod
    def from_dict(cls, record: Any, where: Path) -> ShardRecord:
        try:
            name, count, files = str(record["name"]), int(record["count"]), record["files"]
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{where} has a damaged shard entry ({e}); rebuild the index") from e
        if not _SHARD.fullmatch(name) or not isinstance(files, dict) or count < 0:
            raise FormatError(f"{where} names an invalid shard {name!r}; rebuild the index")
        return cls(name, count, files)


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The sharded manifest at ``path``, or None when ``path`` holds no sharded index."""
    manifest_path = Path(path) / CONFIG_NAME
    if not Path(path).is_dir() or not manifest_path.is_file():
        return None
    try:
        manifest = read_json(manifest_path)
    except FormatError:
        return None
    if isinstance(manifest, dict) and manifest.get("layout") == LAYOUT:
        return manifest
    return None


def is_sharded(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a sharded index (a manifest of shards) rather than one folder."""
    return read_manifest(path) is not None


def check_manifest(manifest: dict[str, Any], folder: Path) -> None:
    """Raise FormatError unless ``manifest`` is a sharded index manifest this release reads."""
    if manifest.get("kind") != "index":
        raise FormatError(f"{folder} holds a simtools {manifest.get('kind')!r}, not an index")
    version = manifest.get("format_version")
    if version != SHARDED_FORMAT_VERSION:
        raise FormatError(f"{folder} is a sharded index of format version {version!r}; this "
                          f"simtools reads version {SHARDED_FORMAT_VERSION}. Upgrade simtools, "
                          "or rebuild the index with this one")
    if not isinstance(manifest.get("shards"), list):
        raise FormatError(f"{folder / CONFIG_NAME} lists no shards; the folder is damaged")


def _records(manifest: dict[str, Any], folder: Path) -> list[ShardRecord]:
    return [ShardRecord.from_dict(r, folder / CONFIG_NAME) for r in manifest["shards"]]


def _encoder_name(manifest: dict[str, Any], folder: Path) -> str | None:
    encoder = manifest.get("encoder")
    if encoder is None:
        return None
    name = encoder.get("name") if isinstance(encoder, dict) else None
    if not isinstance(name, str) or not _ENCODER.fullmatch(name):
        raise FormatError(f"{folder / CONFIG_NAME} names no valid encoder folder; the folder is "
                          "damaged")
    return name


# -- reading ---------------------------------------------------------------------------------
@contextlib.contextmanager
def open_shards(path: str | os.PathLike[str]) -> Iterator[tuple[dict[str, Any], list[Path],
                                                                 Path | None]]:
    """Yield ``(manifest, shard folders, encoder folder)`` of the sharded index at ``path``.

    Every folder is held by a shared lock (no save removes it) until the block ends, and every
    file is checked against the manifest's checksums first: a shard missing or damaged is a
    FormatError that names it.
    """
    folder = Path(path)
    for _ in range(_OPEN_ATTEMPTS):
        manifest = read_manifest(folder)
        if manifest is None:
            raise FormatError(f"{folder} holds no sharded index; check the path")
        check_manifest(manifest, folder)
        records = _records(manifest, folder)
        encoder = _encoder_name(manifest, folder)
        names = [r.name for r in records] + ([encoder] if encoder else [])
        fds: list[int] = []
        try:
            missing = _lock_all(folder, names, fds)
            if missing is not None:
                if read_manifest(folder) == manifest:  # not a save in between: really gone
                    raise FormatError(_missing_message(folder, records, missing))
                time.sleep(0.005)
                continue
            _verify_all(folder, manifest, records, encoder)
            yield (manifest, [folder / r.name for r in records],
                   folder / encoder if encoder else None)
        finally:
            for fd in fds:
                os.close(fd)
        return
    raise FormatError(f"{folder} changed {_OPEN_ATTEMPTS} times while it was being opened; "
                      "try again when the saves pause")


def _lock_all(folder: Path, names: list[str], fds: list[int]) -> str | None:
    """Take a shared lock on every named folder; the name of the first one missing, or None."""
    for name in names:
        target = folder / name
        if target.is_symlink():
            raise FormatError(f"{target} is a symbolic link; simtools only reads files that are "
                              "inside the folder itself")
        fd = _lock_reader(target)
        if fd is None:
            return name
        fds.append(fd)
    return None


def _missing_message(folder: Path, records: list[ShardRecord], name: str) -> str:
    numbers = {r.name: i for i, r in enumerate(records)}
    what = (f"shard {numbers[name]} of {len(records)} ({name})" if name in numbers
            else f"the encoder folder {name}")
    return (f"{what} is missing from {folder}: the index is incomplete; restore the folder "
            "from a backup or rebuild the index")


def _verify_all(folder: Path, manifest: dict[str, Any], records: list[ShardRecord],
                encoder: str | None) -> None:
    manifest_path = folder / CONFIG_NAME

    def check(item: tuple[str, str, Any]) -> None:
        what, name, files = item
        try:
            _verify(folder / name, files, manifest_path)
        except FormatError as e:
            raise FormatError(f"{what} ({name}) of {folder} is damaged: {e}") from e

    items = [(f"shard {i} of {len(records)}", r.name, r.files) for i, r in enumerate(records)]
    if encoder is not None:
        items.append(("the encoder", encoder, manifest["encoder"].get("files")))
    if len(items) > 1:  # hashing releases the GIL: check shards side by side
        with ThreadPoolExecutor(min(len(items), os.cpu_count() or 1)) as pool:
            list(pool.map(check, items))
    else:
        for item in items:
            check(item)


def read_progress(path: str | os.PathLike[str], name: str) -> Any:
    """The build progress record ``name`` saved with the index at ``path``, or None.

    A one-folder index keeps it as a file beside the index's files; a sharded one in its
    manifest (so that it changes in the same atomic step as the shards it describes).
    """
    folder = Path(path)
    if not (folder / CONFIG_NAME).is_file():
        return None
    manifest = read_manifest(folder)
    if manifest is not None:
        progress = manifest.get("progress")
        if isinstance(progress, dict) and progress.get("name") == name:
            return progress.get("record")
        return None
    with open_folder(folder, kind="index") as current:
        file = member(current, name, required=False)
        return read_json(file) if os.path.lexists(file) else None


# -- writing ---------------------------------------------------------------------------------
class ShardStore:
    """Writes shards and publishes manifests in a folder whose writer lock ``writer`` holds.

    :meth:`write_shard` and :meth:`write_encoder` add immutable folders (invisible to readers
    until a manifest names them); :meth:`publish` swaps the manifest in and removes what it no
    longer names.
    """

    def __init__(self, writer: FolderWriter) -> None:
        self.writer = writer
        self.path = writer.path
        self._remove_unlisted()

    def current(self) -> dict[str, Any] | None:
        """The folder's sharded manifest as it stands (None: none, or a one-folder index)."""
        return read_manifest(self.path)

    def listed(self) -> set[str]:
        """The folders the current manifest names (safe to refer to again: never removed)."""
        manifest = self.current()
        if manifest is None:
            return set()
        names = {str(r.get("name")) for r in manifest.get("shards", []) if isinstance(r, dict)}
        encoder = manifest.get("encoder")
        if isinstance(encoder, dict):
            names.add(str(encoder.get("name")))
        return names

    def _sealed(self, stem: str, write: Callable[[Path], None]) -> tuple[str, dict[str, Any]]:
        name = f"{stem}-{secrets.token_hex(4)}"
        tmp, final = self.path / f".{name}.tmp", self.path / name
        tmp.mkdir()
        try:
            write(tmp)
            files = _seal(tmp)
            (tmp / READERS).touch()
            _fsync_dir(tmp)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return name, files

    def write_shard(self, number: int, write: Callable[[Path], None], count: int) -> ShardRecord:
        """A new shard folder for shard ``number``, filled by ``write(folder)``."""
        name, files = self._sealed(f"shard-{number:05d}", write)
        return ShardRecord(name, count, files)

    def write_encoder(self, encoder: Any) -> dict[str, Any]:
        """A new encoder folder; returns the manifest's ``encoder`` entry."""
        name, files = self._sealed("encoder", encoder.save_into)
        return {"name": name, "type": getattr(encoder, "type_name", type(encoder).__name__),
                "files": files}

    def publish(self, fields: dict[str, Any], shards: list[ShardRecord],
                encoder: dict[str, Any] | None) -> None:
        """Make ``shards`` (in position order) the index: one atomic swap of ``config.json``."""
        _fsync_dir(self.path)
        previous = self.current()
        manifest = {"kind": "index", "layout": LAYOUT, "format_version": SHARDED_FORMAT_VERSION,
                    "version": int(previous.get("version", 0)) + 1 if previous else 1,
                    **fields, "count": sum(s.count for s in shards), "encoder": encoder,
                    "shards": [s.to_dict() for s in shards],
                    "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        text = json.dumps(manifest, ensure_ascii=False, indent=1) + "\n"
        atomic_write(self.path / CONFIG_NAME, lambda handle: handle.write(text.encode()))
        _fsync_dir(self.path)
        self._remove_unlisted()

    def _remove_unlisted(self) -> None:
        """Shard and encoder folders no manifest names (replaced, or left by a killed save),
        and one-folder versions left from before the index was sharded; none a reader holds.
        Only folders of our own making go: their names, and the readers' lock file inside."""
        sharded = self.current() is not None
        keep = self.listed()
        for entry in os.listdir(self.path):
            path = self.path / entry
            if path.is_symlink() or not path.is_dir():
                continue
            if _TEMP.fullmatch(entry):
                shutil.rmtree(path, ignore_errors=True)
            elif ((_SHARD.fullmatch(entry) or _ENCODER.fullmatch(entry)) and entry not in keep
                  and (path / READERS).is_file()):
                with _exclusive(path) as free:
                    if free:
                        shutil.rmtree(path, ignore_errors=True)
        if sharded:
            self.writer._remove_old_versions(keep=None)

    def begin(self) -> None:
        """Before the first shard goes into a folder with no index yet: an empty manifest, so
        that a save killed half-way leaves a folder that simtools knows as its own."""
        if not (self.path / CONFIG_NAME).exists():
            self.publish({}, [], None)


def remove_unlisted(writer: FolderWriter) -> None:
    """After a one-folder version is published where a sharded index was: the shard and
    encoder folders no manifest names any more (those no reader holds)."""
    ShardStore(writer)


def shard_dirs_in(path: str | os.PathLike[str]) -> list[str]:
    """The shard folders present in ``path`` (for tests and diagnostics)."""
    return sorted(e for e in os.listdir(path) if _SHARD.fullmatch(e))
