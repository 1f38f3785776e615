"""An on-disk cache of teacher outputs, so that a slow teacher runs once per text.

One store per model identity (``model_id``: the model, its package version, its settings; for
a trained ensemble, a fingerprint of its members and training data). A row is keyed by
``sha1(model_id + "\\0" + text)``, so the same text under another model never collides.

Layout of a store (``<root>/<slug>-<sha1(model_id)[:12]>/``)::

    index.json          {"format_version", "model_id", "dim", "keys": {key: [shard, row]}}
    <shard>.npy         float32 (rows, dim), written once, never modified (append-only)
    <shard>.keys.json   the keys of that shard's rows, in order

Every file is written to a temporary name and renamed into place, so a crash leaves either the
old index or the new one; a shard is complete before the index mentions it. The index is only
an accelerator: if it is corrupted, it is rebuilt from the shards' key files (a warning is
logged), and a shard that cannot be read is dropped, so its rows are simply computed again.
Appends from several processes are serialised with a lock file (POSIX ``flock``).

The default root is ``$SIMTOOLS_CACHE_DIR/teacher``, else ``~/.cache/simtools/teacher``:
``SIMTOOLS_CACHE_DIR`` names the folder that holds every simtools cache (``teacher/`` here,
``wikipedia/`` for the page cache of :mod:`simtools.wiki.api`). Only numpy
(``allow_pickle=False``) and JSON files are read: nothing here unpickles.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .cache_store import StoreInfo, _describe, _is_store, _Store

__all__ = ["CACHE_DIR_ENV", "ENSEMBLE_CACHE_PREFIX", "StoreInfo", "TeacherCache", "cache_root", "default_cache_dir",
           "text_key"]

logger = logging.getLogger(__name__)

#: the model id of a fitted teacher ensemble's store starts with this (``simtools cache clear
#: --fitted`` selects them)
ENSEMBLE_CACHE_PREFIX = "teacher-ensemble:"


#: The folder of every simtools cache; each cache is a subfolder (``teacher``, ``wikipedia``).
CACHE_DIR_ENV = "SIMTOOLS_CACHE_DIR"


def cache_root() -> Path:
    """``$SIMTOOLS_CACHE_DIR`` if set, else ``~/.cache/simtools``: the folder of every cache."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "simtools"


_WARNED: set[Path] = set()  # cache roots already warned about, once per process


def default_cache_dir() -> Path:
    """The teacher cache: ``cache_root() / "teacher"``."""
    root = cache_root()
    folder = root / "teacher"
    if (os.environ.get(CACHE_DIR_ENV) and root not in _WARNED and not folder.exists()
            and root.is_dir() and any(_is_store(child) for child in root.iterdir())):
        # SIMTOOLS_CACHE_DIR used to name the teacher cache itself.
        _WARNED.add(root)
        logger.warning("%s=%s holds teacher cache stores directly; it now names the folder of "
                       "every simtools cache, and the teacher cache is %s: move the store "
                       "folders there, or their rows are computed again", CACHE_DIR_ENV, root,
                       folder)
    return folder


def text_key(model_id: str, text: str) -> str:
    """The cache key of ``text`` under ``model_id``: hex sha1 of both."""
    return hashlib.sha1(f"{model_id}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()


class TeacherCache:
    """Float32 rows (embeddings, logits) on disk, keyed by model identity and text.

    >>> cache = TeacherCache(tmp_dir)                              # doctest: +SKIP
    >>> X = cache.get_or_compute("my-model:v1", texts, model.embed)  # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self._stores: dict[str, _Store] = {}

    def __repr__(self) -> str:
        return f"TeacherCache({str(self.root)!r})"

    def _store(self, model_id: str) -> _Store:
        if not isinstance(model_id, str) or not model_id:
            raise ValueError(f"model_id must be a non-empty str, got {model_id!r}")
        store = self._stores.get(model_id)
        if store is None:
            slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)[:40].strip("._-") or "model"
            digest = hashlib.sha1(model_id.encode("utf-8")).hexdigest()[:12]
            store = _Store(self.root / f"{slug}-{digest}", model_id)
            self._stores[model_id] = store
        return store

    def stores(self) -> list[StoreInfo]:
        """Every store under the root, by folder name: its model, rows, size and age."""
        if not self.root.is_dir():
            return []
        return [_describe(folder) for folder in sorted(self.root.iterdir()) if _is_store(folder)]

    def select(self, names: Sequence[str] = (), *, fitted: bool = False,
               everything: bool = False, older_than_days: float | None = None) -> list[StoreInfo]:
        """The stores named, plus every fitted ensemble's (``fitted``) or every store
        (``everything``), keeping only those untouched for ``older_than_days``. A name that is
        not a store here is an :class:`~simtools.errors.InputError`."""
        known = self.stores()
        unknown = sorted(set(names) - {s.name for s in known})
        if unknown:
            raise InputError(f"{', '.join(unknown)}: not a store under {self.root}; the "
                             "stores are listed by TeacherCache.stores()")
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
        return [s for s in known
                if (everything or s.name in names
                    or (fitted and s.model_id.startswith(ENSEMBLE_CACHE_PREFIX)))
                and (cutoff is None or s.modified < cutoff)]

    def remove(self, names: list[str]) -> int:
        """Delete the stores with these folder names (see :meth:`stores`); returns the bytes
        freed. A name that is not a store of this cache raises ValueError before anything is
        deleted. Their rows are computed again the next time they are asked for."""
        known = {info.name: info for info in self.stores()}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a store under {self.root}; "
                             "`simtools cache info` lists them")
        freed = 0
        for name in dict.fromkeys(names):
            shutil.rmtree(self.root / name)
            freed += known[name].bytes
            self._stores = {m: st for m, st in self._stores.items() if st.folder.name != name}
        return freed

    def compact(self, names: list[str]) -> list[tuple[StoreInfo, StoreInfo]]:
        """Merge each named store's shards into one (see :meth:`stores` for the names);
        returns each store's description before and after. Every row is kept and lookups give
        the same answers; what shrinks is the number of files (one shard per append) and the
        work of a lookup, which maps every shard it reads. A name that is not a store raises
        ValueError before anything is changed; a store whose index cannot be read is skipped
        (its "after" is its "before")."""
        unknown = [n for n in names
                   if n != Path(n).name or n in (".", "..") or not _is_store(self.root / n)]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a store under {self.root}; "
                             "`simtools cache info` lists them")
        done = []
        for name in dict.fromkeys(names):
            folder = self.root / name
            before = _describe(folder)
            if before.model_id:
                store = self._stores.get(before.model_id)
                if store is None or store.folder.name != name:
                    store = _Store(folder, before.model_id)
                store.compact()
            after = (_describe(folder) if _is_store(folder)
                     else replace(before, rows=0, dim=None, shards=0, bytes=0))
            done.append((before, after))
        return done

    def get(self, model_id: str, texts: list[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """Cached rows for ``texts`` and a boolean mask of hits.

        Returns ``(rows, found)``: ``rows`` is float32 ``(n, dim)`` with zeros where
        ``found`` is False, or None when nothing is cached for ``model_id`` yet.
        """
        return self.lookup(model_id, [text_key(model_id, t) for t in texts])

    def lookup(self, model_id: str, keys: list[str]) -> tuple[np.ndarray | None, np.ndarray]:
        """:meth:`get` by precomputed keys (:func:`text_key` of each text): ``(rows, found)``.

        The first call for ``model_id`` reads its store's index; ``keys=[]`` does only that.
        """
        return self._store(model_id).lookup(list(keys))

    def put(self, model_id: str, texts: list[str], rows: Any) -> None:
        """Store float32 ``rows`` (one per text) under ``model_id``; existing keys are kept."""
        self._store(model_id).append([text_key(model_id, t) for t in texts], np.asarray(rows))

    def __len__(self) -> int:
        """Rows held across the stores opened so far."""
        return sum(len(s.keys) for s in self._stores.values())

    def count(self, model_id: str) -> int:
        """How many rows are cached under ``model_id``."""
        store = self._store(model_id)
        store.reload()
        return len(store.keys)

    def get_or_compute(
        self,
        model_id: str,
        texts: list[str],
        compute: Callable[[list[str]], np.ndarray],
        *,
        chunk_size: int = 2048,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Rows for ``texts``: cached ones read back, the others computed, stored and returned.

        ``compute(missing_texts)`` must return float32 ``(len(missing_texts), dim)``. It is
        called on chunks of at most ``chunk_size`` distinct texts, each stored as soon as it is
        done, so an interrupted run keeps what it finished. ``progress(done, total)`` counts
        distinct texts. Returns float32 ``(len(texts), dim)`` in the order of ``texts``.
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        rows, found = self.get(model_id, texts)
        missing: dict[str, None] = {}
        for text, hit in zip(texts, found, strict=True):
            if not hit:
                missing.setdefault(text, None)
        todo = list(missing)
        if todo:
            logger.info("teacher cache %s: %d of %d texts to compute", model_id,
                        len(todo), len(texts))
        total = len(set(texts))
        done = total - len(todo)
        computed: dict[str, np.ndarray] = {}
        for start in range(0, len(todo), chunk_size):
            part = todo[start:start + chunk_size]
            out = np.ascontiguousarray(compute(part), dtype=np.float32)
            if out.ndim != 2 or out.shape[0] != len(part):
                raise ValueError(f"compute returned shape {out.shape} for {len(part)} texts; "
                                 "expected (n_texts, dim)")
            self.put(model_id, part, out)
            computed.update(zip(part, out, strict=True))
            done += len(part)
            if progress is not None:
                progress(done, total)
        if rows is None:
            dim = next(iter(computed.values())).shape[0] if computed else 0
            rows = np.zeros((len(texts), dim), dtype=np.float32)
        for i in np.flatnonzero(~found):
            rows[i] = computed[texts[i]]
        return np.ascontiguousarray(rows, dtype=np.float32)
