"""Build an index from documents in one call: the one
:class:`~simtools.index.builder.IndexBuilder`, without checkpoints (fit the encoder, then encode
and add in bounded batches), in memory. Files, fetched Wikipedia pages
(:func:`simtools.wiki.build.page_documents`) and any other documents come through here; a dump
is streamed into a folder by :func:`simtools.wiki.build.build_dump_index`, through the same
builder."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..data import Document
from ..errors import InputError
from .builder import IndexBuilder, Prepared, batched, encode_known
from .store import Index

__all__ = ["batched", "build_index", "encode_known"]


def _as_prepared(documents: list[Document]) -> Prepared:
    """A piece of work that is documents already (the workers only encode them)."""
    return Prepared(documents)


def build_index(documents: Iterable[Document], *, encoder: Any = "count", metric: str = "cosine",
                backend: str = "exact", batch_size: int = 1024, fit_first: int | None = None,
                on_batch: Callable[[int], None] | None = None,
                on_skip: Callable[[Document], None] | None = None,
                shard_size: int | None = None, workers: int = 1, **options: Any) -> Index:
    """An index of ``documents`` (text, title, label, source, metadata, optional id).

    An unfitted encoder that needs a vocabulary is fitted on all the documents first (they are
    held in memory once), or on the first ``fit_first``; a hashing or pretrained encoder
    streams. ``on_batch(n)`` is called after every batch of ``n`` documents, e.g. to move a
    progress bar. ``workers > 1`` encodes in that many processes (the same index comes out).
    ``shard_size`` makes a :class:`~simtools.index.sharded.ShardedIndex` of shards of that
    many documents (saved as one folder while it has one shard).

    A document the encoder cannot place (blank, or no token it knows) is left out and passed
    to ``on_skip(document)``; without ``on_skip`` it is an InputError. Documents without an
    id are numbered from 0, in the order kept.
    """
    if shard_size is None:
        index = Index(encoder, metric=metric, backend=backend, **options)
    else:
        from .sharded import ShardedIndex

        index = ShardedIndex(encoder, metric=metric, backend=backend, shard_size=shard_size,
                             **options)
    builder = IndexBuilder(index, fit_first=fit_first, batch_size=batch_size,
                           on_skip=on_skip, on_batch=on_batch, workers=workers)
    try:
        if workers == 1:
            builder.extend(documents)
        else:
            if not builder.fitted and fit_first is None:
                documents = list(documents)  # a first pass fits the encoder on them all
                builder.fit(documents)
            for batch in batched(documents, batch_size):
                builder.push_task(_as_prepared, batch)
        builder.finish()
    finally:
        builder.close()
    if len(index) == 0:
        raise InputError("no documents to index" if not builder.skipped else
                         f"no documents to index: all {builder.seen} document(s) were skipped, "
                         "as none has a token this encoder knows; use another encoder")
    return index
