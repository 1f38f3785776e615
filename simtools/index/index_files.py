"""The files of an index folder: what :meth:`Index.save_into` writes and :meth:`Index.load`
reads back, checked (format version, counts, norms, the encoder's dimension).

A version folder holds ``config.json`` (kind, format version, metric, backend, counts),
``documents.jsonl`` (id, title, label, metadata), ``norms.npy``, the backend's vectors and, for
an index of texts, ``encoder/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..persistence import FormatError, load_npy, member, read_config, write_json
from .backends import load_backend
from .documents import read_documents, write_documents

__all__ = ["FORMAT_VERSION", "read_index_files", "write_index_files"]

FORMAT_VERSION = 1


def write_index_files(index: Any, folder: Path) -> None:
    """Write ``index`` into the existing (temporary) ``folder``."""
    assert index._backend is not None
    backend_config = index._backend.save(folder)
    np.save(folder / "norms.npy", index._norms, allow_pickle=False)
    write_documents(folder / "documents.jsonl", index.ids, index.titles, index.labels,
                    index.metadata)
    if index.encoder is not None:
        (folder / "encoder").mkdir()
        index.encoder.save_into(folder / "encoder")
    write_json(folder / "config.json", {
        "kind": "index", "format_version": FORMAT_VERSION, "metric": index.metric.value,
        "backend": backend_config, "options": index.options, "count": len(index),
        "next_id": index._next_id, "has_encoder": index.encoder is not None})


def read_index_files(cls: Any, folder: Path, *, mmap: bool) -> Any:
    """The index of class ``cls`` (an ``Index``) saved in ``folder``; FormatError if damaged."""
    config = read_config(folder, kind="index", versions=(FORMAT_VERSION,))
    try:
        index = cls(None, metric=config["metric"], backend=config["backend"]["kind"],
                    **config.get("options", {}))
        index._next_id = int(config["next_id"])
        index._backend = load_backend(folder, config["backend"], mmap)
        count = int(config["count"])
        has_encoder = config["has_encoder"]
        if not isinstance(has_encoder, bool):
            raise TypeError(f"has_encoder is {has_encoder!r}, not true or false")
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, FormatError):
            raise
        raise FormatError(f"{folder / 'config.json'} is inconsistent ({e}); rebuild the index") from e
    index.ids, index.titles, index.labels, index.metadata = read_documents(
        member(folder, "documents.jsonl"))
    index._id_set = set(index.ids)
    index._norms = load_npy(member(folder, "norms.npy"))
    if index._norms.ndim != 1 or not np.isfinite(index._norms).all():
        raise FormatError(f"{folder / 'norms.npy'} is not a column of finite norms; "
                          "rebuild the index")
    if len(index._norms) != count:
        raise FormatError(f"{folder / 'norms.npy'} has {len(index._norms)} rows, expected {count}")
    if len(index) != count or len(index._backend) != count:
        raise FormatError(f"{folder} is inconsistent: config says {count} documents, "
                          f"documents.jsonl has {len(index)}, vectors {len(index._backend)}; "
                          "the folder is truncated or was edited — rebuild the index")
    if has_encoder:
        from ..encoders.base import load_encoder

        index.encoder = load_encoder(folder / "encoder")
        if count and index.encoder.dim != index.dim:
            raise FormatError(f"{folder}: the encoder makes {index.encoder.dim}-d vectors but "
                              f"the index holds {index.dim}-d ones; rebuild the index")
    return index
