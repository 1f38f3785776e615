"""Build an index from documents: fit the encoder, then encode and add in bounded batches."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import numpy as np

from .._validation import blank_mask, check_texts
from ..data import Document
from ..errors import InputError
from ..metrics import row_norms
from .store import Index

__all__ = ["batched", "build_index", "encode_known"]


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most ``size`` items."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def encode_known(index: Index, texts: Sequence[str], *,
                 what: str = "document") -> tuple[Any, np.ndarray]:
    """``(vectors, known)`` for texts an index may not be able to place (``what="query"``:
    encoded as queries, for encoders such as bm25 that weight queries differently).

    ``known`` is bool ``(n,)``: False for a blank text (nothing visible) and for one that the
    index's encoder maps to the zero vector (no token it knows, e.g. "\U0001F440" for a word
    encoder), which has no direction to search by. ``vectors`` holds the raw vectors of the
    known texts only, in order (dense float32 or CSR), or is None when no text is known.
    """
    if index.encoder is None:
        raise InputError("this index was built from vectors, not texts; pass vectors instead")
    texts = check_texts(texts, allow_empty=True)
    known = ~blank_mask(texts)
    if not known.any():
        return None, known
    encode = index.encoder.encode
    if what == "query":
        encode = getattr(index.encoder, "encode_queries", encode)
    vectors = encode([text for text, ok in zip(texts, known) if ok])
    placed = row_norms(vectors) > 0
    if not placed.all():
        known[known] = placed
        vectors = vectors[placed] if placed.any() else None
    return vectors, known


def _where(document: Document) -> str:
    """Where a document came from, for messages: ``tweets.jsonl line 12``, or its title."""
    if document.line is not None:
        return f"{document.source} line {document.line}"
    return document.source or document.title


def build_index(documents: Iterable[Document], *, encoder: Any = "count", metric: str = "cosine",
                backend: str = "exact", batch_size: int = 1024,
                on_batch: Callable[[int], None] | None = None,
                on_skip: Callable[[Document], None] | None = None, **options: Any) -> Index:
    """An index of ``documents`` (text, title, label, source, metadata).

    An unfitted encoder that needs a vocabulary is fitted on all the documents first (they are
    held in memory once); a hashing or pretrained encoder streams. ``on_batch(n)`` is called
    after every batch of ``n`` documents, e.g. to move a progress bar.

    A document the encoder cannot place (blank, or no token it knows) is left out and passed
    to ``on_skip(document)``; without ``on_skip`` it is an InputError. Ids number the
    documents kept, from 0.
    """
    index = Index(encoder, metric=metric, backend=backend, **options)
    docs: Iterable[Document] = documents
    enc = index.encoder
    if enc is not None and not getattr(enc, "is_fitted_", False):
        docs = list(documents)
        if not docs:
            raise InputError("no documents to index")
        enc.fit([d.text for d in docs])
    seen = skipped = 0
    for batch in batched(docs, batch_size):
        seen += len(batch)
        vectors, known = encode_known(index, [d.text for d in batch])
        for document in (d for d, ok in zip(batch, known) if not ok):
            if on_skip is None:
                raise InputError(f"{_where(document)} has no token this encoder knows "
                                 f"({document.text[:60]!r}), so it has no place in the index; "
                                 "use an encoder with character n-grams ('char') or a dense one "
                                 "('student'), or pass on_skip to leave such documents out")
            on_skip(document)
            skipped += 1
        kept = [d for d, ok in zip(batch, known) if ok]
        if kept:
            index.add_vectors(vectors, labels=[d.label for d in kept],
                              titles=[d.title for d in kept],
                              metadata=[{"source": d.source, **d.metadata} for d in kept])
        if on_batch is not None:
            on_batch(len(batch))
    if len(index) == 0:
        raise InputError("no documents to index" if not skipped else
                         f"no documents to index: all {seen} document(s) were skipped, as none "
                         "has a token this encoder knows; use another encoder")
    return index
