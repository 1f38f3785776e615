"""Build an index from documents: fit the encoder, then encode and add in bounded batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from ..data import Document
from .store import Index

__all__ = ["batched", "build_index"]


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most ``size`` items."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def build_index(documents: Iterable[Document], *, encoder: Any = "count", metric: str = "cosine",
                backend: str = "exact", batch_size: int = 1024,
                on_batch: Callable[[int], None] | None = None, **options: Any) -> Index:
    """An index of ``documents`` (text, title, label, source, metadata).

    An unfitted encoder that needs a vocabulary is fitted on all the documents first (they are
    held in memory once); a hashing or pretrained encoder streams. ``on_batch(n)`` is called
    after every batch of ``n`` documents, e.g. to move a progress bar.
    """
    index = Index(encoder, metric=metric, backend=backend, **options)
    docs: Iterable[Document] = documents
    enc = index.encoder
    if enc is not None and not getattr(enc, "is_fitted_", False):
        docs = list(documents)
        if not docs:
            raise ValueError("no documents to index")
        enc.fit([d.text for d in docs])
    for batch in batched(docs, batch_size):
        index.add_texts([d.text for d in batch], labels=[d.label for d in batch],
                        titles=[d.title for d in batch],
                        metadata=[{"source": d.source, **d.metadata} for d in batch])
        if on_batch is not None:
            on_batch(len(batch))
    if len(index) == 0:
        raise ValueError("no documents to index")
    return index
