"""A piece of work done by a Ray actor, as one row of plain columns (JSON text and ``.npz``
bytes, no pickle), and back: so that results cross Ray Data as ordinary data."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from ..data import Document
from .work import Prepared

__all__ = ["pack", "unpack"]

_FIELDS = ("title", "label", "source", "metadata", "line", "id")


def pack(prepared: Prepared, vectors: Any, known: Any, seconds: dict[str, float],
         worker: tuple[Any, float]) -> dict[str, Any]:
    """``{"result": JSON text, "arrays": npz bytes}`` for one piece of work. A document's text
    travels only when the encoder could not place it (for the message that names it)."""
    placed = np.ones(len(prepared.documents), dtype=bool) if known is None else known
    documents = [{"text": "" if ok else d.text, **{f: getattr(d, f) for f in _FIELDS}}
                 for d, ok in zip(prepared.documents, placed)]
    record = {"documents": documents, "info": prepared.info,
              "seconds": {**prepared.seconds, **seconds}, "worker": list(worker)}
    arrays: dict[str, np.ndarray] = {}
    if known is not None:
        arrays["known"] = np.asarray(known, dtype=bool)
    if vectors is not None and hasattr(vectors, "tocsr"):
        csr = vectors.tocsr()
        arrays.update(data=csr.data.astype(np.float32), indices=csr.indices.astype(np.int64),
                      indptr=csr.indptr.astype(np.int64), shape=np.asarray(csr.shape))
    elif vectors is not None:
        arrays["dense"] = np.ascontiguousarray(vectors, dtype=np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return {"result": json.dumps(record, ensure_ascii=False), "arrays": buffer.getvalue()}


def unpack(result: str, data: bytes) -> tuple[Prepared, Any, Any, dict[str, float],
                                              tuple[Any, float]]:
    """The ``(prepared, vectors, known, seconds, worker)`` that :func:`pack` was given."""
    record = json.loads(result)
    documents = [Document(d["text"], **{f: d.get(f) for f in _FIELDS})
                 for d in record["documents"]]
    for document in documents:
        document.metadata = document.metadata or {}
        document.source = document.source or ""
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        known = arrays.get("known")
        vectors: Any = None
        if "dense" in arrays:
            vectors = arrays["dense"]
        elif "data" in arrays:
            import scipy.sparse as sp

            shape = tuple(int(n) for n in arrays["shape"])
            vectors = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                                    shape=shape)
    worker = (str(record["worker"][0]), float(record["worker"][1]))
    return (Prepared(documents, record["info"], {}), vectors, known, record["seconds"], worker)
