"""The one way to fill an index from documents: files, Wikipedia pages and dumps alike.

An :class:`IndexBuilder` takes documents one at a time (or an iterable of them) and

1. fits the index's encoder, if it needs fitting, on the first ``fit_first`` documents (all of
   them when ``fit_first`` is None: they are held until :meth:`finish`); a vocabulary-free or
   pretrained encoder is never refitted;
2. encodes them ``batch_size`` at a time; a document the encoder cannot place (blank, or no
   token it knows) goes to ``on_skip`` (without one it is an :class:`InputError`);
3. adds the encoded batches to the index ``add_every`` rows at a time (``Index.add_vectors``
   costs O(len(index)) per call for its duplicate-id check, so few large adds keep a build
   linear);
4. with a :class:`~simtools.folders.FolderWriter`, saves a checkpoint every ``checkpoint_every``
   documents: the index plus whatever files ``extra_files(folder)`` writes beside it (a dump's
   progress record), as one new version of the folder.

Documents with an ``id`` keep it; otherwise ids number the documents kept, from 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import blank_mask, check_texts
from ..data import Document
from ..errors import InputError
from ..metrics import row_norms
from .store import Index

__all__ = ["ADD_EVERY", "IndexBuilder", "batched", "encode_known"]

ADD_EVERY = 8192


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


def where(document: Document) -> str:
    """Where a document came from, for messages: ``tweets.jsonl line 12``, or its title."""
    if document.line is not None:
        return f"{document.source} line {document.line}"
    return document.source or document.title


class IndexBuilder:
    """Fit, encode, add and checkpoint a stream of documents into ``index``."""

    def __init__(self, index: Index, *, fit_first: int | None = None, batch_size: int = 1024,
                 add_every: int = ADD_EVERY, writer: Any = None,
                 checkpoint_every: int | None = None,
                 extra_files: Callable[[Path], None] | None = None,
                 on_skip: Callable[[Document], None] | None = None,
                 on_batch: Callable[[int], None] | None = None) -> None:
        for name, value in (("batch_size", batch_size), ("add_every", add_every),
                            ("fit_first", fit_first), ("checkpoint_every", checkpoint_every)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if checkpoint_every is not None and writer is None:
            raise InputError("checkpoint_every needs a writer (a FolderWriter) to save into")
        self.index = index
        self.fit_first = fit_first
        self.batch_size = batch_size
        self.add_every = add_every
        self.writer = writer
        self.checkpoint_every = checkpoint_every
        self.extra_files = extra_files
        self.on_skip = on_skip
        self.on_batch = on_batch
        encoder = index.encoder
        self.fitted = encoder is None or bool(getattr(encoder, "is_fitted_", False))
        self.seen = 0  # documents pushed
        self.skipped = 0
        self.checkpoints = 0
        self.last: Document | None = None  # the last document encoded (kept or skipped)
        self._buffer: list[Document] = []
        self._pending: list[tuple[Any, list[Document]]] = []
        self._pending_rows = 0
        self._since_checkpoint = 0

    # -- feeding ----------------------------------------------------------------------------
    def extend(self, documents: Iterable[Document]) -> IndexBuilder:
        for document in documents:
            self.push(document)
        return self

    def push(self, document: Document) -> None:
        self._buffer.append(document)
        self.seen += 1
        if self.fitted:
            wanted = self.batch_size
        elif self.fit_first is None:
            return  # fitted on everything: wait for finish()
        else:
            wanted = max(self.fit_first, self.batch_size)
        if len(self._buffer) >= wanted:
            self._flush()
            if self.checkpoint_every is not None and self._since_checkpoint >= self.checkpoint_every:
                self.checkpoint()

    def finish(self) -> Index:
        """Encode and add what is buffered; returns the index (still unsaved)."""
        self._flush()
        self._commit()
        return self.index

    def checkpoint(self) -> None:
        """Save the index (and the extra files) as a new version of the writer's folder."""
        if self.writer is None:
            raise InputError("this builder has no writer to save into")
        self._flush()
        self._commit()
        with self.writer.version() as folder:
            self.index.save_into(folder)
            if self.extra_files is not None:
                self.extra_files(folder)
        self._since_checkpoint = 0
        self.checkpoints += 1

    # -- the work ---------------------------------------------------------------------------
    def _flush(self) -> None:
        if not self._buffer:
            return
        if not self.fitted:
            encoder = self.index.encoder
            texts = [d.text for d in self._buffer]
            usable = [t for t, blank in zip(texts, blank_mask(texts)) if not blank]
            if not usable:
                raise InputError(f"the first {len(texts)} document(s) are all blank, so the "
                                 "encoder has nothing to learn from")
            encoder.fit(usable)
            self.fitted = True
        for batch in batched(self._buffer, self.batch_size):
            self._encode(batch)
        self.last = self._buffer[-1]
        self._buffer = []

    def _encode(self, batch: list[Document]) -> None:
        vectors, known = encode_known(self.index, [d.text for d in batch])
        for document in (d for d, ok in zip(batch, known) if not ok):
            if self.on_skip is None:
                raise InputError(f"{where(document)} has no token this encoder knows "
                                 f"({document.text[:60]!r}), so it has no place in the index; "
                                 "use an encoder with character n-grams ('char') or a dense "
                                 "one ('student'), or pass on_skip to leave such documents out")
            self.on_skip(document)
            self.skipped += 1
        kept = [d for d, ok in zip(batch, known) if ok]
        if kept:
            self._pending.append((vectors, kept))
            self._pending_rows += len(kept)
            if self._pending_rows >= self.add_every:
                self._commit()
        self._since_checkpoint += len(kept)
        if self.on_batch is not None:
            self.on_batch(len(batch))

    def _commit(self) -> None:
        """Add the encoded batches to the index in one call."""
        if not self._pending:
            return
        blocks = [vectors for vectors, _ in self._pending]
        if hasattr(blocks[0], "tocsr"):
            import scipy.sparse as sp

            vectors = sp.vstack(blocks, format="csr")
        else:
            vectors = np.ascontiguousarray(np.vstack(blocks), dtype=np.float32)
        documents = [d for _, kept in self._pending for d in kept]
        self._pending, self._pending_rows = [], 0
        given = [d.id is not None for d in documents]
        if any(given) and not all(given):
            raise InputError("some documents have ids and some do not; give every document "
                             "an id, or none")
        self.index.add_vectors(
            vectors, ids=[str(d.id) for d in documents] if all(given) else None,
            labels=[d.label for d in documents], titles=[d.title for d in documents],
            metadata=[{"source": d.source, **d.metadata} for d in documents])
