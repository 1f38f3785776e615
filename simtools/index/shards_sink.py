"""Where a streamed build puts its documents: the open shard in memory, full shards on disk.

A :class:`ShardSink` holds one :class:`~simtools.index.Index` in memory, the open shard. While
the build has a single shard, a checkpoint saves it as an ordinary one-folder index (a new
version of the folder, with the progress record beside it), exactly as before shards existed.
When the open shard is full and another document comes, the folder becomes sharded: the full
shard is written as a shard folder, a manifest names it (with the progress record), and a new,
empty shard opens. From then on a checkpoint writes the open shard only, and memory holds one
shard whatever the size of the build. An interrupted build reopens the folder with
:meth:`ShardSink.reopen` and continues after the last checkpoint (the last complete shard, or
the open one as last saved).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import is_sparse
from ..data import Document
from ..errors import InputError
from ..folders import FolderWriter
from ..persistence import write_json
from .shard_backend import check_shard_size
from .shards_store import (
    ShardRecord,
    ShardStore,
    open_shards,
    read_manifest,
    read_progress,
    remove_unlisted,
)
from .store import Index

__all__ = ["IdSet", "ShardSink", "vectors_only"]


class IdSet:
    """Ids met so far: a bit each for small non-negative integers (page ids), a set otherwise."""

    _BITMAP = 1 << 27

    def __init__(self) -> None:
        self._bits = bytearray()
        self._others: set[str] = set()

    def add(self, doc_id: str) -> bool:
        """Record ``doc_id``; False when it was met before."""
        number = int(doc_id) if doc_id.isdigit() and doc_id == str(int(doc_id)) else -1
        if not 0 <= number < self._BITMAP:
            if doc_id in self._others:
                return False
            self._others.add(doc_id)
            return True
        byte, mask = number >> 3, 1 << (number & 7)
        if byte >= len(self._bits):
            self._bits.extend(bytes(min(max(byte + 1, 2 * len(self._bits)), self._BITMAP >> 3)
                                    - len(self._bits)))
        if self._bits[byte] & mask:
            return False
        self._bits[byte] |= mask
        return True


def vectors_only(index: Index) -> Index:
    """``index`` without its encoder: the same backend and columns, saved as a shard."""
    view = Index(None, metric=index.metric, backend=index.backend_kind, **index.options)
    view._backend = index._backend
    view.ids, view.titles, view.labels, view.metadata = (index.ids, index.titles, index.labels,
                                                         index.metadata)
    view._id_set, view._norms = index._id_set, index._norms
    return view


def _fields(index: Index, shard_size: int, next_id: int, dim: int, sparse: bool) -> dict[str, Any]:
    return {"metric": index.metric.value, "backend": index.backend_kind.value,
            "options": index.options, "next_id": next_id, "shard_size": shard_size,
            "dim": dim, "sparse": sparse, "inner_metric": index.inner_metric.value}


class ShardSink:
    """Documents of a streamed build, written to ``writer``'s folder ``shard_size`` at a time.

    ``index`` is the (empty) first shard: its encoder, metric and backend are the build's.
    ``progress_name`` and ``progress(last_document)`` give the record saved with every
    checkpoint (a file in a one-folder index, an entry of a sharded manifest).
    """

    def __init__(self, writer: FolderWriter | None, index: Index, shard_size: int | None, *,
                 progress_name: str | None = None,
                 progress: Callable[[Document | None], Any] | None = None,
                 extra_files: Callable[[Path], None] | None = None) -> None:
        self.writer = writer
        #: None: one index, never rolled over (the index may shard itself: a ShardedIndex)
        self.shard_size = None if shard_size is None else check_shard_size(shard_size)
        self.open = index
        self.encoder = index.encoder
        self.progress_name = progress_name
        self.progress = progress
        self.extra_files = extra_files
        self.records: list[ShardRecord] = []  # the complete shards, on disk
        self.store: ShardStore | None = None  # set once the folder is sharded
        self.encoder_entry: dict[str, Any] | None = None
        self.before = 0  # documents in the complete shards
        self.next_id = index._next_id
        self.seen = IdSet()  # across shards (the open index checks its own ids)
        for doc_id in index.ids if shard_size is not None else ():
            self.seen.add(doc_id)
        self.last: Document | None = None  # the last document added
        self._shape: tuple[int, bool] | None = None

    @property
    def count(self) -> int:
        """Documents in the build so far."""
        return self.before + len(self.open)

    @property
    def sharded(self) -> bool:
        return self.store is not None

    # -- adding ------------------------------------------------------------------------------
    def add(self, vectors: Any, documents: Sequence[Document], ids: list[str] | None) -> None:
        """Add encoded ``documents`` (ids given, or None to number them from ``next_id``)."""
        n = len(documents)
        if self.shard_size is None:
            self.open.add_vectors(vectors, ids=ids, **_columns(documents))
            self.last = documents[-1]
            return
        if ids is None:
            ids = [str(self.next_id + i) for i in range(n)]
            self.next_id += n
        for doc_id in ids:
            if not self.seen.add(doc_id):
                raise InputError(f"id {doc_id!r} is already in the index (ids must be unique); "
                                 "remove it first or choose another id")
        self._shape = (vectors.shape[1], is_sparse(vectors))
        start = 0
        while start < n:
            assert self.shard_size is not None
            if len(self.open) >= self.shard_size:
                self._roll_over()
            stop = min(n, start + self.shard_size - len(self.open))
            part = documents[start:stop]
            self.open.add_vectors(vectors[start:stop], ids=ids[start:stop], **_columns(part))
            self.open._next_id = self.next_id
            self.last = part[-1]
            start = stop

    def _roll_over(self) -> None:
        """The open shard is full: write it as a complete shard and open an empty one."""
        store = self._store()
        record = store.write_shard(len(self.records), vectors_only(self.open).save_into,
                                   len(self.open))
        self.records.append(record)
        self.before += len(self.open)
        self.open = Index(None, metric=self.open.metric, backend=self.open.backend_kind,
                          **self.open.options)
        self._publish(self.records, self.last)

    def _store(self) -> ShardStore:
        if self.store is None:
            assert self.writer is not None
            self.store = ShardStore(self.writer)
            if self.encoder is not None:
                self.encoder_entry = self.store.write_encoder(self.encoder)
        return self.store

    def _publish(self, records: list[ShardRecord], last: Document | None) -> None:
        assert self.store is not None and self._shape is not None
        assert self.shard_size is not None
        fields = _fields(self.open, self.shard_size, self.next_id, *self._shape)
        if self.progress is not None:
            fields["progress"] = {"name": self.progress_name, "record": self.progress(last)}
        self.store.publish(fields, records, self.encoder_entry)

    # -- saving ------------------------------------------------------------------------------
    def checkpoint(self, last: Document | None = None) -> None:
        """Save what has been added: the open shard and the manifest (or the one folder).
        ``last``: the last document the build has dealt with (kept or not), for the progress
        record [default: the last one added]."""
        last = last if last is not None else self.last
        if self.writer is None:
            raise InputError("this build has no writer (a FolderWriter) to save into")
        if not self.sharded:
            with self.writer.version() as folder:
                self.open.save_into(folder)
                if self.progress is not None and self.progress_name is not None:
                    write_json(folder / self.progress_name, self.progress(last))
                if self.extra_files is not None:
                    self.extra_files(folder)
            remove_unlisted(self.writer)  # a sharded index this build replaces
            return
        assert self.store is not None
        records = list(self.records)
        if len(self.open):
            records.append(self.store.write_shard(len(records), vectors_only(self.open).save_into,
                                                  len(self.open)))
        self._publish(records, last)

    # -- resuming ----------------------------------------------------------------------------
    @classmethod
    def reopen(cls, writer: FolderWriter, shard_size: int, *, progress_name: str | None = None,
               progress: Callable[[Document | None], Any] | None = None
               ) -> tuple[ShardSink, Any]:
        """The sink of an interrupted build in ``writer``'s folder and its progress record."""
        path = writer.path
        record = read_progress(path, progress_name) if progress_name else None
        manifest = read_manifest(path)
        if manifest is None:
            index = Index.load(path, mmap=False)
            return cls(writer, index, shard_size, progress_name=progress_name,
                       progress=progress), record
        if manifest.get("shard_size") != shard_size:
            raise InputError(f"cannot resume {path}: it was built with shard_size "
                             f"{manifest.get('shard_size')!r}, not {shard_size}; use the same "
                             "shard size")
        with open_shards(path) as (manifest, folders, encoder_folder):
            from ..encoders.base import load_encoder

            encoder = load_encoder(encoder_folder) if encoder_folder is not None else None
            records = [ShardRecord.from_dict(r, path) for r in manifest["shards"]]
            last_full = bool(records) and records[-1].count >= shard_size
            complete = records if last_full else records[:-1]
            open_index = (Index._load_files(folders[-1], mmap=False) if records and not last_full
                          else Index(None, metric=manifest["metric"], backend=manifest["backend"],
                                     **manifest.get("options", {})))
            ids = [i for folder in folders[:len(complete)] for i in _shard_ids(folder)]
        first = Index(encoder, metric=manifest["metric"], backend=manifest["backend"],
                      **manifest.get("options", {}))
        sink = cls(writer, first, shard_size, progress_name=progress_name, progress=progress)
        sink.open = open_index
        sink.store = ShardStore(writer)
        sink.records, sink.encoder_entry = complete, manifest.get("encoder")
        sink.before = sum(r.count for r in complete)
        sink.next_id = int(manifest.get("next_id", 0))
        sink._shape = (int(manifest["dim"]), bool(manifest["sparse"]))
        for doc_id in [*ids, *open_index.ids]:
            sink.seen.add(doc_id)
        return sink, record


def _columns(documents: Sequence[Document]) -> dict[str, Any]:
    return {"labels": [d.label for d in documents], "titles": [d.title for d in documents],
            "metadata": [{"source": d.source, **d.metadata} for d in documents]}


def _shard_ids(folder: Path) -> list[str]:
    with open(folder / "documents.jsonl", encoding="utf-8") as handle:
        return [str(json.loads(line)["id"]) for line in handle]


def stack(blocks: list[Any]) -> Any:
    """Encoded blocks (dense or CSR) as one matrix."""
    if hasattr(blocks[0], "tocsr"):
        import scipy.sparse as sp

        return sp.vstack(blocks, format="csr")
    return np.ascontiguousarray(np.vstack(blocks), dtype=np.float32)
