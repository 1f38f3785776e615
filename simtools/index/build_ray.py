"""Index files on Ray (``--engine ray``): Ray Data reads them, actors clean and encode, and
this process adds the results to the one :class:`~simtools.index.builder.IndexBuilder`.

1. **read** through Ray Data: JSONL, CSV, TSV and Parquet tables with ``ray.data``'s readers
   (a ``text`` column; ``label`` and ``title`` optional); other paths (text files, folders of
   class subfolders, named data sets) are read here and handed over with
   ``ray.data.from_items``.
2. **clean and encode** on a pool of ``workers`` actors (:mod:`simtools.engines.ray_build`).
3. **write**: the results come back in input order and go to the builder and its shard sink:
   a shard is written every ``shard_size`` documents, then the manifest. The index is the one
   the local engine builds from the same input.

An encoder with a vocabulary is fitted first, here, on every document of the files (a first
pass through Ray Data that brings only their text here, as the local engine fits on all).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..data import Document, read_documents
from ..engines.ray_build import Result, run_on_ray
from ..engines.ray_session import connect
from ..engines.work import Prepared
from ..errors import InputError
from ..folders import FolderWriter
from .builder import IndexBuilder
from .store import Index

__all__ = ["TABLE_READERS", "build_files_ray", "encode_documents_ray"]

#: how Ray Data reads each kind of table
TABLE_READERS = (".jsonl", ".csv", ".tsv", ".parquet")


def rows_documents(batch: dict[str, Any]) -> list[Prepared]:
    """In an actor: one batch of table rows as one piece of work."""
    started = time.process_time()
    documents = [_row_document(batch, i) for i in range(len(batch["text"]))]
    return [Prepared(documents, None, {"read": time.process_time() - started})]


def _value(batch: dict[str, Any], name: str, i: int) -> Any:
    if name not in batch:
        return None
    value = batch[name][i]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _row_document(batch: dict[str, Any], i: int) -> Document:
    text = _value(batch, "text", i)
    label, title = _value(batch, "label", i), _value(batch, "title", i)
    source = _value(batch, "source", i) or ""
    metadata = _value(batch, "metadata", i)
    return Document("" if text is None else str(text), "" if title is None else str(title),
                    None if label in (None, "") else str(label), str(source),
                    json.loads(metadata) if isinstance(metadata, str) else {})


def _dataset(ray: Any, path: str, encoding: str | None) -> Any:
    """A Ray dataset of documents (columns text, title, label, source) for one PATH."""
    suffix = Path(path).suffix.lower()
    # Reading takes no CPU of its own: the actors hold one each, and a read task that waited
    # for a free CPU would wait for ever on a cluster of as many CPUs as actors.
    light = {"ray_remote_args": {"num_cpus": 0}}
    if suffix == ".jsonl":
        return ray.data.read_json(path, lines=True, **light)
    if suffix in (".csv", ".tsv"):
        from pyarrow import csv

        options = csv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",",
                                   quote_char=False if suffix == ".tsv" else '"',
                                   newlines_in_values=suffix == ".csv")
        return ray.data.read_csv(path, parse_options=options, **light)
    if suffix == ".parquet":
        return ray.data.read_parquet(path, **light)
    rows = [{"text": d.text, "title": d.title, "label": d.label or "", "source": d.source,
             "metadata": json.dumps(d.metadata)} for d in read_documents(path, encoding=encoding)]
    return ray.data.from_items(rows)


def _table_documents(result: Result, path: str, counter: list[int]) -> None:
    """What a table row left out, as the local reader fills it: the source, and a title from
    the row's number (rows numbered from 1) when it has none. A row without text is an error,
    as for the local reader."""
    prepared, known = result[0], result[2]
    if Path(path).suffix.lower() not in TABLE_READERS:
        return
    for i, document in enumerate(prepared.documents):
        counter[0] += 1
        document.source, document.line = str(Path(path)), counter[0]
        if not document.title:
            document.title = f"{Path(path).name}:{counter[0]}"
        if (known is None or not known[i]) and not document.text.strip():
            raise InputError(f"{path}:{counter[0]} has no text (a 'text' column or key is "
                             "required)")


def _check_text(dataset: Any, path: str) -> None:
    if "text" not in dataset.columns():
        raise InputError(f"{path} needs a 'text' column (and 'label' for training); found "
                         f"columns {dataset.columns()}")


def _fit_texts(datasets: list[tuple[str, Any]], limit: int | None) -> list[str]:
    """The first pass: the text of every document (the first ``limit``), in order."""
    texts: list[str] = []
    for _, dataset in datasets:
        for batch in dataset.select_columns(["text"]).iter_batches(batch_format="numpy"):
            texts.extend("" if t is None else str(t) for t in batch["text"])
            if limit is not None and len(texts) >= limit:
                return texts[:limit]
    return texts


def encode_documents_ray(paths: list[str], builder: IndexBuilder, *, workers: int,
                         batch_size: int, encoding: str | None = None,
                         fit_first: int | None = None, address: str | None = None) -> None:
    """Feed the documents of ``paths`` into ``builder`` through the Ray pipeline (see the
    module docstring); ``builder`` is then finished (not checkpointed)."""
    ray = connect(address, num_cpus=workers)
    datasets = [(path, _dataset(ray, path, encoding)) for path in paths]
    for path, dataset in datasets:
        _check_text(dataset, path)
    if not builder.fitted:
        builder.fit([Document(text, "") for text in _fit_texts(datasets, fit_first)])
    for path, dataset in datasets:
        counter = [0]

        def take(result: Result, path: str = path, counter: list[int] = counter) -> None:
            _table_documents(result, path, counter)
            builder.take(result)

        run_on_ray(dataset, rows_documents, builder.encoder, workers=workers,
                   batch_size=batch_size, take=take)
    builder.finish()


def build_files_ray(paths: list[str], out: str | os.PathLike[str], *, encoder: Any,
                    metric: str | None = None, backend: str = "exact", shard_size: int,
                    workers: int = 2, batch_size: int = 1024, encoding: str | None = None,
                    address: str | None = None, force: bool = False,
                    on_skip: Callable[[Document], None] | None = None,
                    on_batch: Callable[[int], None] | None = None) -> IndexBuilder:
    """Index the documents of ``paths`` into the folder ``out`` on Ray (in shards of
    ``shard_size``; one ordinary folder below that); returns the finished builder."""
    connect(address, num_cpus=workers)  # an unreachable cluster fails before out is touched
    index = Index(encoder, metric=metric, backend=backend)
    with FolderWriter(out, kind="index", force=force) as writer:
        builder = IndexBuilder(index, batch_size=batch_size, writer=writer,
                               shard_size=shard_size, on_skip=on_skip, on_batch=on_batch)
        encode_documents_ray(list(paths), builder, workers=workers, batch_size=batch_size,
                             encoding=encoding, address=address)
        if builder.count == 0:
            raise InputError("no documents to index" if not builder.skipped else
                             f"no documents to index: all {builder.skipped} document(s) were "
                             "skipped, as none has a token this encoder knows; use another "
                             "encoder")
        builder.checkpoint()
    return builder
