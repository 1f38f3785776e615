"""One store of the teacher cache: the rows of one model, in append-only shards.

Layout of a store (``<root>/<slug>-<sha1(model_id)[:12]>/``)::

    index.json          {"format_version", "model_id", "dim", "keys": {key: [shard, row]}}
    <shard>.npy         float32 (rows, dim), written once, never modified (append-only)
    <shard>.keys.json   the keys of that shard's rows, in order

See :mod:`simtools.distill.cache` for the guarantees; :class:`TeacherCache` is the public face.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..persistence import atomic_write

__all__ = ["FORMAT_VERSION", "StoreInfo"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_INDEX = "index.json"


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def _atomic_save_npy(path: Path, rows: np.ndarray) -> None:
    atomic_write(path, lambda handle: np.save(handle, rows, allow_pickle=False))


@dataclass(frozen=True)
class StoreInfo:
    """What one store of a cache holds, as :meth:`TeacherCache.stores` reports it."""

    name: str  # the folder name under the cache root
    model_id: str  # "" when the index cannot be read
    rows: int
    dim: int | None
    shards: int
    bytes: int
    modified: float  # newest file's mtime, seconds since the epoch

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model_id": self.model_id, "rows": self.rows,
                "dim": self.dim, "shards": self.shards, "bytes": self.bytes,
                "modified": self.modified}


def _is_store(folder: Path) -> bool:
    """A folder this cache wrote: it has an index or a shard's key file, and nothing else
    but ``.npy``, ``.json``, temporary and lock files."""
    if not folder.is_dir() or folder.is_symlink():
        return False
    names = [p.name for p in folder.iterdir()]
    ours = (".npy", ".json", ".lock", ".tmp")
    return (_INDEX in names or any(n.endswith(".keys.json") for n in names)) and all(
        n.endswith(ours) or n.startswith(".") for n in names)


def _describe(folder: Path) -> StoreInfo:
    files = [p for p in folder.iterdir() if p.is_file()]
    try:
        index = json.loads((folder / _INDEX).read_text(encoding="utf-8"))
        model_id, rows, dim = str(index["model_id"]), len(index["keys"]), int(index["dim"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        model_id, rows, dim = "", 0, None
    stats = [p.stat() for p in files]
    return StoreInfo(name=folder.name, model_id=model_id, rows=rows, dim=dim,
                     shards=sum(p.name.endswith(".keys.json") for p in files),
                     bytes=sum(st.st_size for st in stats),
                     modified=max((st.st_mtime for st in stats), default=0.0))


class _Store:
    """The rows of one model identity: an index in memory, shards on disk."""

    def __init__(self, folder: Path, model_id: str) -> None:
        self.folder = folder
        self.model_id = model_id
        self.dim: int | None = None
        self.keys: dict[str, tuple[str, int]] = {}
        self._stamp: tuple[int, int] | None = None
        self._shards: dict[str, np.ndarray] = {}
        self._bad: set[str] = set()  # shards found unreadable: their keys are ignored
        self.reload()

    # -- reading --------------------------------------------------------------------------
    def _index_stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.folder / _INDEX).stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def reload(self, *, force: bool = False) -> None:
        """Re-read the index if another process (or this one) has changed it."""
        stamp = self._index_stamp()
        if stamp == self._stamp and not force:
            return
        self._stamp = stamp
        if stamp is None:
            self.keys, self.dim = {}, None
            return
        try:
            data = json.loads((self.folder / _INDEX).read_text(encoding="utf-8"))
            if data.get("format_version") != FORMAT_VERSION or data.get("model_id") != self.model_id:
                raise ValueError(f"format {data.get('format_version')!r} / model "
                                 f"{data.get('model_id')!r}")
            self.dim = int(data["dim"])
            self.keys = {k: (str(v[0]), int(v[1])) for k, v in data["keys"].items()
                         if v[0] not in self._bad}
            # drop the maps of shards the index no longer names (a compaction replaced them)
            live = {shard for shard, _ in self.keys.values()}
            self._shards = {k: v for k, v in self._shards.items() if k in live}
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError,
                RecursionError) as e:
            logger.warning("teacher cache index %s is unreadable (%s); rebuilding it from the "
                           "shards", self.folder / _INDEX, e)
            self._rebuild()

    def _rebuild(self) -> None:
        self.keys, self.dim = {}, None
        for keys_file in sorted(self.folder.glob("*.keys.json")):
            shard = keys_file.name[: -len(".keys.json")]
            if shard in self._bad:
                continue
            try:
                keys = json.loads(keys_file.read_text(encoding="utf-8"))
                rows = self._shard(shard)
                if not isinstance(keys, list) or len(keys) != rows.shape[0]:
                    raise ValueError(f"{len(keys)} keys for {rows.shape[0]} rows")
            except (OSError, ValueError, TypeError, RecursionError) as e:
                logger.warning("dropping unreadable teacher cache shard %s (%s)", shard, e)
                continue
            self.dim = int(rows.shape[1])
            for i, key in enumerate(keys):
                self.keys[str(key)] = (shard, i)

    def _shard(self, name: str) -> np.ndarray:
        rows = self._shards.get(name)
        if rows is None:
            rows = np.load(self.folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            if rows.ndim != 2 or rows.dtype != np.float32:
                raise ValueError(f"shard {name} holds {rows.dtype} {rows.shape}, expected "
                                 "float32 (rows, dim)")
            self._shards[name] = rows
        return rows

    def lookup(self, keys: list[str], *, retry: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
        """Rows found for ``keys`` (zeros where missing) and a boolean mask of which were found."""
        self.reload()
        found = np.zeros(len(keys), dtype=bool)
        if self.dim is None:
            return None, found
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        by_shard: dict[str, tuple[list[int], list[int]]] = {}
        for i, key in enumerate(keys):
            where = self.keys.get(key)
            if where is not None:
                positions, rows = by_shard.setdefault(where[0], ([], []))
                positions.append(i)
                rows.append(where[1])
        for shard, (positions, rows) in by_shard.items():
            try:
                data = self._shard(shard)
                out[positions] = data[rows]
            except (OSError, ValueError, IndexError) as e:
                if retry and self._index_stamp() != self._stamp:
                    # another process rewrote the index (a compaction deleted this shard
                    # after our reload): read the new index and look again, once
                    return self.lookup(keys, retry=False)
                # A truncated or deleted shard: forget its keys so the rows are recomputed.
                logger.warning("teacher cache shard %s is unreadable (%s); its rows will be "
                               "recomputed", shard, e)
                self._shards.pop(shard, None)
                self._bad.add(shard)
                self.keys = {k: v for k, v in self.keys.items() if v[0] != shard}
                continue
            found[positions] = True
        return out, found

    # -- writing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a+b") as handle:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX: single writer assumed
                yield
                return
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def append(self, keys: list[str], rows: np.ndarray) -> None:
        """Add rows under ``keys`` (keys already present are skipped)."""
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[0] != len(keys):
            raise ValueError(f"rows must have shape ({len(keys)}, dim), got {rows.shape}")
        with self._locked():
            self.reload()
            if self.dim is not None and rows.shape[1] != self.dim:
                raise ValueError(f"the cache for {self.model_id!r} holds {self.dim}-d rows, got "
                                 f"{rows.shape[1]}-d; the model changed without a new model_id")
            keep = [i for i, k in enumerate(keys) if k not in self.keys]
            keep = list({keys[i]: i for i in keep}.values())  # one row per key
            if not keep:
                return
            shard = f"{len({s for s, _ in self.keys.values()}):05d}-{uuid.uuid4().hex[:8]}"
            new_keys = [keys[i] for i in keep]
            _atomic_save_npy(self.folder / f"{shard}.npy", rows[keep])
            _atomic_write_bytes(self.folder / f"{shard}.keys.json",
                                json.dumps(new_keys).encode("utf-8"))
            self.dim = int(rows.shape[1])
            for i, key in enumerate(new_keys):
                self.keys[key] = (shard, i)
            self._write_index()

    def _write_index(self) -> None:
        index = {"format_version": FORMAT_VERSION, "model_id": self.model_id, "dim": self.dim,
                 "keys": {k: [s, r] for k, (s, r) in self.keys.items()}}
        _atomic_write_bytes(self.folder / _INDEX,
                            json.dumps(index, separators=(",", ":")).encode("utf-8"))
        self._stamp = self._index_stamp()

    def _stray_files(self, keep: set[str]) -> list[Path]:
        """Shard files whose shard is not in ``keep``, and temporary files of killed writes."""
        stray = []
        for path in self.folder.iterdir():
            name = path.name
            shard = (name[: -len(".keys.json")] if name.endswith(".keys.json")
                     else name[: -len(".npy")] if name.endswith(".npy") else None)
            if (shard is not None and shard not in keep) or (
                    name.startswith(".") and name.endswith(".tmp")):
                stray.append(path)
        return stray

    def compact(self) -> None:
        """Rewrite every row into one shard and delete the other shard files.

        The new shard and its key file are complete before the new index names them, and the
        old files are deleted only after that, so a crash at any point leaves a readable store
        (at worst with an unreferenced shard, which the next compaction deletes). Rows of a
        shard that cannot be read are left out: they are computed again when next asked for.
        """
        with self._locked():
            self.reload(force=True)
            live = {shard for shard, _ in self.keys.values()}
            if len(live) <= 1 and not self._stray_files(live):
                return
            keys = list(self.keys)
            rows, found = self.lookup(keys, retry=False)
            keys = [k for k, hit in zip(keys, found, strict=True) if hit]
            if rows is None or not keys:
                for path in self._stray_files(set()):
                    path.unlink()
                (self.folder / _INDEX).unlink(missing_ok=True)
                self.keys, self.dim, self._stamp, self._shards = {}, None, None, {}
                return
            shard = f"00000-{uuid.uuid4().hex[:8]}"
            _atomic_save_npy(self.folder / f"{shard}.npy", rows[found])
            _atomic_write_bytes(self.folder / f"{shard}.keys.json",
                                json.dumps(keys).encode("utf-8"))
            self.keys = {key: (shard, i) for i, key in enumerate(keys)}
            self._write_index()
            self._shards, self._bad = {}, set()
            for path in self._stray_files({shard}):
                path.unlink(missing_ok=True)
