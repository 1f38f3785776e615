"""The one way to fill an index from documents: files, Wikipedia pages and dumps alike.

An :class:`IndexBuilder` takes documents one at a time (:meth:`~IndexBuilder.push`), or work
that makes documents (:meth:`~IndexBuilder.push_task`: raw dump pages to clean, a byte range
of a multistream dump to read), and

1. fits the index's encoder, if it needs fitting, on the first ``fit_first`` documents (all of
   them when ``fit_first`` is None: they are held until :meth:`finish`); a vocabulary-free or
   pretrained encoder is never refitted;
2. encodes them ``batch_size`` at a time, in this process or, with ``workers > 1``, in that
   many worker processes (each loads the fitted encoder once; results are merged here in the
   order the work was given, so the index is the same whatever the number of workers); a
   document the encoder cannot place (blank, or no token it knows) goes to ``on_skip``
   (without one it is an :class:`InputError`);
3. adds the encoded batches to the index ``add_every`` rows at a time (``Index.add_vectors``
   costs O(len(index)) per call for its duplicate-id check, so few large adds keep a build
   linear);
4. with a :class:`~simtools.folders.FolderWriter`, saves a checkpoint every
   ``checkpoint_every`` documents. With ``shard_size`` the build is streamed into shards of
   that many documents (:class:`~simtools.index.shards_sink.ShardSink`): memory holds one
   shard, a checkpoint writes only the open shard, and a build that stays below one shard is
   saved as an ordinary one-folder index. Without ``shard_size`` every checkpoint saves the
   whole index, plus whatever files ``extra_files(folder)`` writes beside it.

Documents with an ``id`` keep it; otherwise ids number the documents kept, from 0.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import blank_mask
from ..data import Document
from ..encoders.known import encode_texts
from ..engines.local import EncodingPool
from ..engines.work import Prepare, Prepared
from ..errors import InputError
from .shards_sink import ShardSink, stack
from .store import Index

__all__ = ["ADD_EVERY", "IndexBuilder", "Prepare", "Prepared", "batched", "encode_known",
           "encode_texts"]

ADD_EVERY = 8192


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most ``size`` items."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def encode_known(index: Index, texts: Sequence[str], *,
                 what: str = "document") -> tuple[Any, np.ndarray]:
    """:func:`~simtools.encoders.known.encode_texts` under the index's encoder: ``(vectors,
    known)``, ``known`` False where a text is blank or has no token the encoder knows."""
    if index.encoder is None:
        raise InputError("this index was built from vectors, not texts; pass vectors instead")
    return encode_texts(index.encoder, texts, what=what)


def where(document: Document) -> str:
    """Where a document came from, for messages: ``tweets.jsonl line 12``, or its title."""
    if document.line is not None:
        return f"{document.source} line {document.line}"
    return document.source or document.title


#: sees each piece of work's documents in order, in this process; returns those to keep
Accept = Callable[[Prepared], list[Document]]


class IndexBuilder:
    """Fit, encode, add and checkpoint a stream of documents into ``index``."""

    def __init__(self, index: Index, *, fit_first: int | None = None, batch_size: int = 1024,
                 add_every: int = ADD_EVERY, writer: Any = None,
                 checkpoint_every: int | None = None,
                 extra_files: Callable[[Path], None] | None = None,
                 on_skip: Callable[[Document], None] | None = None,
                 on_batch: Callable[[int], None] | None = None,
                 shard_size: int | None = None, progress_name: str | None = None,
                 progress: Callable[[Document | None], Any] | None = None,
                 accept: Accept | None = None, workers: int = 1,
                 sink: ShardSink | None = None) -> None:
        for name, value in (("batch_size", batch_size), ("add_every", add_every),
                            ("fit_first", fit_first), ("checkpoint_every", checkpoint_every),
                            ("shard_size", shard_size), ("workers", workers)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if checkpoint_every is not None and writer is None:
            raise InputError("checkpoint_every needs a writer (a FolderWriter) to save into")
        if shard_size is not None and writer is None and sink is None:
            raise InputError("shard_size streams shards into a folder and needs a writer (a "
                             "FolderWriter); for an index in memory, build a ShardedIndex")
        self.sink = sink or ShardSink(writer, index, shard_size, progress_name=progress_name,
                                      progress=progress, extra_files=extra_files)
        self.encoder = self.sink.encoder
        self.fit_first = fit_first
        self.batch_size = batch_size
        self.add_every = add_every
        self.writer = writer
        self.checkpoint_every = checkpoint_every
        self.on_skip = on_skip
        self.on_batch = on_batch
        self.accept = accept
        #: called with n as n documents of push_task work are taken in (progress)
        self.on_accept: Callable[[int], None] | None = None
        self.workers = workers
        self.fitted = self.encoder is None or bool(getattr(self.encoder, "is_fitted_", False))
        self.seen = 0  # documents pushed
        self.skipped = 0
        self.checkpoints = 0
        self.seconds: dict[str, float] = {}  # CPU seconds by stage, summed over the workers
        self.worker_peak_mib: dict[Any, float] = {}  # peak resident memory of each worker
        self.last: Document | None = None  # the last document encoded (kept or skipped)
        self._buffer: list[Document] = []
        self._pending: list[tuple[Any, list[Document]]] = []
        self._pending_rows = 0
        self._since_checkpoint = 0
        self._pool: Any = None
        self._inflight: deque[Any] = deque()

    @property
    def index(self) -> Index:
        """The index being filled (with ``shard_size``: the open shard)."""
        return self.sink.open

    @property
    def count(self) -> int:
        """Documents in the index so far (every shard)."""
        return self.sink.count + self._pending_rows

    # -- feeding ----------------------------------------------------------------------------
    def extend(self, documents: Iterable[Document]) -> IndexBuilder:
        for document in documents:
            self.push(document)
        return self

    def push(self, document: Document) -> None:
        self._drain()
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
            self._maybe_checkpoint()

    def push_task(self, prepare: Prepare, payload: Any) -> None:
        """Work that makes documents: ``prepare(payload)`` runs in a worker once the encoder is
        fitted and ``workers > 1``; here otherwise. Its documents go through ``accept``."""
        if not self.fitted or self.workers == 1:
            prepared = prepare(payload)
            _add_seconds(self.seconds, prepared.seconds)
            for document in self._accepted(prepared):
                self.push(document)
                if self.on_accept is not None:
                    self.on_accept(1)
            return
        self._flush()
        pool = self._start_pool()
        self._inflight.append(pool.submit(prepare, payload))
        while len(self._inflight) > 2 * self.workers:
            self._take(self._inflight.popleft())

    def finish(self) -> Index:
        """Encode and add what is buffered; returns the index (with ``shard_size``: the open
        shard; the earlier ones are on disk). Still unsaved: call :meth:`checkpoint`."""
        self._drain()
        self._flush()
        self._commit()
        return self.index

    def close(self) -> None:
        """Stop the worker processes (work in flight is dropped)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._inflight.clear()

    def checkpoint(self) -> None:
        """Save the index (and the progress record) as a new version of the writer's folder."""
        if self.writer is None:
            raise InputError("this builder has no writer to save into")
        self.finish()
        self.sink.checkpoint(self.last)
        self._since_checkpoint = 0
        self.checkpoints += 1

    # -- the work ---------------------------------------------------------------------------
    def _accepted(self, prepared: Prepared) -> list[Document]:
        return prepared.documents if self.accept is None else self.accept(prepared)

    def _maybe_checkpoint(self) -> None:
        if self.checkpoint_every is not None and self._since_checkpoint >= self.checkpoint_every:
            self.checkpoint()

    def _start_pool(self) -> Any:
        if self._pool is None:
            self._pool = EncodingPool(self.encoder, self.workers)
        return self._pool

    def take(self, result: tuple[Prepared, Any, Any, dict[str, float], tuple[Any, float]]
             ) -> None:
        """The next piece of work done elsewhere (another engine), in order: ``(prepared,
        vectors, known, CPU seconds by stage, (worker, its peak memory in MiB))``."""
        self._drain()
        self._flush()
        self._take_result(result)

    def _take(self, future: Any) -> None:
        self._take_result(future.result())

    def _take_result(self, result: tuple[Prepared, Any, Any, dict[str, float],
                                         tuple[Any, float]]) -> None:
        """A result of the workers, in order: accepted, then added."""
        prepared, vectors, known, seconds, (worker, peak) = result
        self.worker_peak_mib[worker] = max(peak, self.worker_peak_mib.get(worker, 0.0))
        _add_seconds(self.seconds, prepared.seconds)
        _add_seconds(self.seconds, seconds)
        kept = self._accepted(prepared)
        if len(kept) != len(prepared.documents):
            wanted = {id(d) for d in kept}
            mask = np.array([id(d) in wanted for d in prepared.documents], dtype=bool)
            vectors, known = _select(vectors, known, mask)
        self.seen += len(kept)
        if kept:
            self._handle(kept, vectors, known)
            if self.on_accept is not None:
                self.on_accept(len(kept))
            self._maybe_checkpoint()

    def _drain(self) -> None:
        while self._inflight:
            self._take(self._inflight.popleft())

    def fit(self, documents: Sequence[Document]) -> None:
        """Fit the encoder on ``documents`` (the blank ones left out), as on the first
        ``fit_first`` documents: for a first pass over a corpus held elsewhere."""
        texts = [d.text for d in documents]
        usable = [t for t, blank in zip(texts, blank_mask(texts)) if not blank]
        if not usable:
            raise InputError(f"the first {len(texts)} document(s) are all blank, so the "
                             "encoder has nothing to learn from")
        self.encoder.fit(usable)
        self.fitted = True

    def _flush(self) -> None:
        if not self._buffer:
            return
        if not self.fitted:
            # on the first fit_first documents exactly, though more may be buffered (a batch)
            self.fit(self._buffer if self.fit_first is None else self._buffer[:self.fit_first])
        started = time.process_time()
        for batch in batched(self._buffer, self.batch_size):
            vectors, known = encode_texts(self.encoder, [d.text for d in batch])
            self._handle(batch, vectors, known)
        _add_seconds(self.seconds, {"encode": time.process_time() - started})
        self._buffer = []

    def _handle(self, batch: list[Document], vectors: Any, known: np.ndarray) -> None:
        """An encoded batch: skipped documents reported, kept ones queued for adding."""
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
        self.last = batch[-1]
        self._since_checkpoint += len(kept)
        if self.on_batch is not None:
            self.on_batch(len(batch))

    def _commit(self) -> None:
        """Add the encoded batches to the index in one call."""
        if not self._pending:
            return
        vectors = stack([vectors for vectors, _ in self._pending])
        documents = [d for _, kept in self._pending for d in kept]
        self._pending, self._pending_rows = [], 0
        given = [d.id is not None for d in documents]
        if any(given) and not all(given):
            raise InputError("some documents have ids and some do not; give every document "
                             "an id, or none")
        self.sink.add(vectors, documents, [str(d.id) for d in documents] if all(given) else None)


def _select(vectors: Any, known: np.ndarray, mask: np.ndarray) -> tuple[Any, np.ndarray]:
    """The rows of an encoded batch whose documents ``mask`` keeps."""
    rows = np.cumsum(known) - 1  # each known document's row in ``vectors``
    keep_rows = rows[mask & known]
    if vectors is not None:
        vectors = vectors[keep_rows] if keep_rows.size else None
    return vectors, known[mask]


def _add_seconds(total: dict[str, float], more: dict[str, float]) -> None:
    for stage, seconds in more.items():
        total[stage] = total.get(stage, 0.0) + seconds
