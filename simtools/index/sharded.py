"""A sharded index: one :class:`~simtools.index.Index` whose rows live in several shards.

A :class:`ShardedIndex` is an ``Index`` (ids, labels, encoder and every method are the same)
whose backend is a :class:`ShardedBackend`: consecutive runs of ``shard_size`` rows, each an
ordinary backend. Positions stay global: shard 0 holds the first rows, shard 1 the next, and
so on, so a document's position is where it would be in one unsharded index.

- Adding goes to the last shard (a new one opens when it is full); removing goes to the shard
  that holds each id. Only the shards that changed are written at the next :meth:`save`.
- A search runs every shard on a thread pool and merges their top ``k`` exactly: by score,
  then by position (shard order, then position in the shard). For the exact backends the
  results are those of one unsharded index over the same documents, ties in the top k listed
  in the same order. (As for one index, which of several documents tied at the k-th place is
  kept is each shard's choice.) Sparse inner-product scores are recomputed from each
  candidate's row before the merge, so that a document scores the same whatever shard holds
  it (they may differ from one index's own in the last bit). FAISS HNSW and IVF shards are
  approximate each on their own.
- Saved, it is a folder of shards (:mod:`simtools.index.shards_store`); a one-shard index is
  saved as today's one-folder index, so nothing changes for small corpora.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_vectors, is_sparse
from ..errors import FormatError
from ..folders import FolderWriter
from .device import Device
from .shard_backend import DEFAULT_SHARD_SIZE, ShardedBackend, check_shard_size, merge_topk_shards
from .shards_store import ShardRecord, ShardStore, open_shards, read_manifest, remove_unlisted
from .store import Index

__all__ = ["DEFAULT_SHARD_SIZE", "ShardedBackend", "ShardedIndex", "check_shard_size",
           "merge_topk_shards"]

class ShardedIndex(Index):
    """An :class:`~simtools.index.Index` in shards of ``shard_size`` documents (see the module
    docstring). Takes the same arguments as ``Index``, plus ``shard_size``."""

    def __init__(self, encoder: Any = None, *, metric: Any = None, backend: Any = "exact",
                 shard_size: int = DEFAULT_SHARD_SIZE, **options: Any) -> None:
        super().__init__(encoder, metric=metric, backend=backend, **options)
        self.shard_size = check_shard_size(shard_size)
        self._saved_at: Path | None = None  # the folder the shard records refer to
        self._encoder_entry: dict[str, Any] | None = None

    @property
    def shards(self) -> ShardedBackend | None:
        return self._backend  # type: ignore[return-value]

    @property
    def n_shards(self) -> int:
        return 0 if self._backend is None else len(self.shards.shards)  # type: ignore[union-attr]

    def add_vectors(self, vectors: Any, **columns: Any) -> list[str]:
        if self._backend is None:
            vectors = check_vectors(vectors)
            self._backend = ShardedBackend(self.backend_kind, vectors.shape[1], self.inner_metric,
                                           is_sparse(vectors), self.options, self.shard_size,
                                           device=self.device, dtype=self.dtype)
        return super().add_vectors(vectors, **columns)

    def with_metric(self, metric: Any) -> Index:
        other = super().with_metric(metric)
        if other is self:
            return self
        sharded = ShardedIndex(self.encoder, metric=other.metric, backend=self.backend_kind,
                               shard_size=self.shard_size, device=self.device, dtype=self.dtype,
                               **self.options)
        sharded.add_vectors(self.stored_vectors(raw=True), ids=self.ids, labels=self.labels,
                            titles=self.titles, metadata=self.metadata)
        sharded._next_id = self._next_id
        return sharded

    def serve_on_ray(self, *, address: str | None = None) -> ShardedIndex:
        """Search through one Ray actor per shard from now on, each loading its shard from this
        index's folder (see :mod:`simtools.index.ray_shards`); the results are the same."""
        from .ray_shards import serve_on_ray

        return serve_on_ray(self, address=address)  # type: ignore[no-any-return]

    def use_device(self, device: str | Device = "auto", *, dtype: str = "float32") -> Index:
        """Search every shard on ``device`` from now on (see :meth:`Index.use_device`)."""
        self.device = check_choice(device, Device, name="device")
        self.dtype = dtype
        if self.shards is not None:
            self.shards.move(self.device, dtype)
        return self

    # -- persistence ------------------------------------------------------------------------
    def shard_view(self, number: int) -> Index:
        """Shard ``number`` as an ordinary, vectors-only :class:`Index` (shares its backend)."""
        backend = self.shards
        assert backend is not None
        start = backend.offsets()[number]
        shard = backend.shards[number]
        stop = start + len(shard)
        view = Index(None, metric=self.metric, backend=self.backend_kind, **self.options)
        view._backend = shard
        view.ids, view.titles = self.ids[start:stop], self.titles[start:stop]
        view.labels, view.metadata = self.labels[start:stop], self.metadata[start:stop]
        view._id_set = set(view.ids)
        view._norms = self._norms[start:stop]
        return view

    def manifest_fields(self) -> dict[str, Any]:
        backend = self.shards
        return {"metric": self.metric.value, "backend": self.backend_kind.value,
                "options": self.options, "next_id": self._next_id, "shard_size": self.shard_size,
                "dim": self.dim, "sparse": self.sparse,
                "inner_metric": None if backend is None else backend.inner_metric.value}

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the index to the folder ``path``: one folder per shard plus a manifest, only
        the shards changed since the last save or load there being written. A one-shard index
        is saved as an ordinary one-folder index (unless ``path`` is sharded already)."""
        if self._backend is None:
            raise ValueError("the index is empty; add documents before saving")
        with FolderWriter(path, kind="index", force=force) as writer:
            if self.n_shards == 1 and read_manifest(path) is None:
                with writer.version() as folder:
                    self.save_into(folder)
                remove_unlisted(writer)
                self._forget_records()
            else:
                self.save_shards(ShardStore(writer))
        return Path(path)

    def _forget_records(self) -> None:
        backend = self.shards
        if backend is not None:
            backend.saved = [None] * len(backend.shards)
        self._saved_at, self._encoder_entry = None, None

    def save_shards(self, store: ShardStore, *, progress: dict[str, Any] | None = None) -> None:
        """Write the changed shards into ``store`` and publish a manifest of all of them."""
        backend = self.shards
        assert backend is not None
        same = self._saved_at is not None and _same_folder(self._saved_at, store.path)
        listed = store.listed() if same else set()
        store.begin()
        records: list[ShardRecord] = []
        for i, record in enumerate(backend.saved):
            if record is None or record.name not in listed:
                view = self.shard_view(i)
                record = store.write_shard(i, view.save_into, len(view))
                backend.saved[i] = record
            records.append(record)
        encoder = self._encoder_entry if same and self._encoder_entry and \
            self._encoder_entry["name"] in listed else None
        if encoder is None and self.encoder is not None:
            encoder = store.write_encoder(self.encoder)
        fields = self.manifest_fields()
        if progress is not None:
            fields["progress"] = progress
        store.publish(fields, records, encoder)
        self._saved_at, self._encoder_entry = store.path, encoder

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> ShardedIndex:
        """Read a sharded index folder (or a one-folder index, as one shard)."""
        if read_manifest(path) is None:
            plain = Index.load(path, mmap=mmap)
            return cls.from_index(plain)
        with open_shards(path) as (manifest, folders, encoder_folder):
            shards = [Index._load_files(folder, mmap=mmap) for folder in folders]
            encoder = None
            if encoder_folder is not None:
                from ..encoders.base import load_encoder

                encoder = load_encoder(encoder_folder)
        return cls._assemble(Path(path), manifest, shards, encoder)

    @classmethod
    def from_index(cls, index: Index, *, shard_size: int | None = None) -> ShardedIndex:
        """``index`` as a one-shard ShardedIndex (sharing its backend and lists)."""
        sharded = cls(index.encoder, metric=index.metric, backend=index.backend_kind,
                      shard_size=shard_size or max(DEFAULT_SHARD_SIZE, len(index)),
                      device=index.device, dtype=index.dtype, **index.options)
        if index._backend is not None:
            sharded._backend = ShardedBackend(
                index.backend_kind, index._backend.dim, index.inner_metric, index.sparse,
                index.options, sharded.shard_size, [index._backend], device=index.device,
                dtype=index.dtype)
        sharded.ids, sharded.titles = list(index.ids), list(index.titles)
        sharded.labels, sharded.metadata = list(index.labels), list(index.metadata)
        sharded._id_set, sharded._norms = set(index.ids), index._norms
        sharded._next_id = index._next_id
        return sharded

    @classmethod
    def _assemble(cls, path: Path, manifest: dict[str, Any], shards: list[Index],
                  encoder: Any) -> ShardedIndex:
        if not shards:
            raise FormatError(f"{path} holds no saved index yet: its first save was "
                              "interrupted; save it again")
        try:
            index = cls(None, metric=manifest["metric"], backend=manifest["backend"],
                        shard_size=manifest["shard_size"], **manifest.get("options", {}))
            index._next_id = int(manifest["next_id"])
            records = [ShardRecord.from_dict(r, path) for r in manifest["shards"]]
            dim, sparse = int(manifest["dim"]), bool(manifest["sparse"])
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, FormatError):
                raise
            raise FormatError(f"{path / 'config.json'} is inconsistent ({e}); rebuild the "
                              "index") from e
        for i, (shard, record) in enumerate(zip(shards, records)):
            if (len(shard) != record.count or shard.dim != dim or shard.sparse != sparse
                    or shard.metric is not index.metric):
                raise FormatError(f"shard {i} ({record.name}) of {path} does not match the "
                                  "manifest (count, dimension or metric); rebuild the index")
        index.encoder = encoder
        index._backend = ShardedBackend(index.backend_kind, dim, index.inner_metric, sparse,
                                        index.options, index.shard_size,
                                        [s._backend for s in shards])  # type: ignore[misc]
        index._backend.saved = list(records)  # type: ignore[union-attr]
        for shard in shards:
            index.ids += shard.ids
            index.titles += shard.titles
            index.labels += shard.labels
            index.metadata += shard.metadata
        index._id_set = set(index.ids)
        if len(index._id_set) != len(index.ids):
            raise FormatError(f"{path}: an id appears in two shards; rebuild the index")
        index._norms = np.concatenate([s._norms for s in shards]).astype(np.float32)
        if encoder is not None and encoder.dim != dim:
            raise FormatError(f"{path}: the encoder makes {encoder.dim}-d vectors but the index "
                              f"holds {dim}-d ones; rebuild the index")
        index._saved_at, index._encoder_entry = path, manifest.get("encoder")
        return index


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
