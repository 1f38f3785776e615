"""Build an index from documents in one call (the :class:`~simtools.index.builder.IndexBuilder`
without checkpoints): fit the encoder, then encode and add in bounded batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..data import Document
from ..errors import InputError
from .builder import IndexBuilder, batched, encode_known
from .store import Index

__all__ = ["batched", "build_index", "encode_known"]


def build_index(documents: Iterable[Document], *, encoder: Any = "count", metric: str = "cosine",
                backend: str = "exact", batch_size: int = 1024, fit_first: int | None = None,
                on_batch: Callable[[int], None] | None = None,
                on_skip: Callable[[Document], None] | None = None, **options: Any) -> Index:
    """An index of ``documents`` (text, title, label, source, metadata, optional id).

    An unfitted encoder that needs a vocabulary is fitted on all the documents first (they are
    held in memory once), or on the first ``fit_first``; a hashing or pretrained encoder
    streams. ``on_batch(n)`` is called after every batch of ``n`` documents, e.g. to move a
    progress bar.

    A document the encoder cannot place (blank, or no token it knows) is left out and passed
    to ``on_skip(document)``; without ``on_skip`` it is an InputError. Documents without an
    id are numbered from 0, in the order kept.
    """
    index = Index(encoder, metric=metric, backend=backend, **options)
    builder = IndexBuilder(index, fit_first=fit_first, batch_size=batch_size,
                           on_skip=on_skip, on_batch=on_batch)
    builder.extend(documents).finish()
    if len(index) == 0:
        raise InputError("no documents to index" if not builder.skipped else
                         f"no documents to index: all {builder.seen} document(s) were skipped, "
                         "as none has a token this encoder knows; use another encoder")
    return index
