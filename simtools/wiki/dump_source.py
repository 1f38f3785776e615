"""A dump as work for the index builder: read here and fanned out, or read by byte offset.

- A plain (single-stream) dump can only be read from its start: this process reads it once
  (bz2 and XML), and hands raw pages, ``CHUNK`` at a time, to the workers, which clean the
  wikitext and encode (:func:`clean_raw_pages`); with one worker, that work runs here.
- A multistream dump with its index (:mod:`simtools.wiki.multistream`) is read by the workers
  themselves: each piece of work is a byte range of whole bz2 streams, which the worker
  decompresses, parses, cleans and encodes (:func:`read_streams`).

Either way the results come back in file order and go through :class:`_Acceptor` here, which
counts skipped pages, drops a page id met before, stops at ``limit`` and remembers a fault (a
truncated or corrupted file): the articles before a fault are kept, as when reading serially.
With a limit, the counts of skipped pages may include pages read ahead of the limit.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.parsers import expat

from ..data import Document
from ..engines.work import Prepared
from ..errors import InputError
from ..index.shards_sink import IdSet
from .dump import _clean_page, _raw_pages
from .dump_types import DumpError, DumpStats, _RawPage
from .dump_xml import _PageReader
from .multistream import find_index, read_header, read_index, read_range, stream_ranges
from .pages import LabelFrom, page_document

__all__ = ["CHUNK", "PAGES_PER_RANGE", "DumpSource", "clean_raw_pages", "read_streams",
           "streams_documents"]

logger = logging.getLogger("simtools.wiki.dump")

#: raw pages per piece of work when a plain dump is fanned out
CHUNK = 32
#: pages (whole streams, 100 each in Wikimedia's files) per piece of work of a multistream dump
PAGES_PER_RANGE = 200
_COUNTED = ("pages_seen", "redirects", "other_namespaces", "duplicates", "too_large")


def _cleaned(raws: list[_RawPage], label_from: str, max_nesting: int | None,
             prepared: Prepared) -> None:
    started = time.process_time()
    label_kind = LabelFrom(label_from)
    outcomes = prepared.info.setdefault("outcomes", [])
    for raw in raws:
        page, problem = _clean_page(raw, max_nesting)
        if page is not None:
            prepared.documents.append(page_document(page, label_kind))
        outcomes.append((raw.title, problem))
    prepared.seconds["clean"] = time.process_time() - started


def clean_raw_pages(payload: tuple[list[_RawPage], str, int | None]) -> Prepared:
    """In a worker: raw pages of a plain dump, cleaned into documents."""
    raws, label_from, max_nesting = payload
    prepared = Prepared([], {})
    _cleaned(raws, label_from, max_nesting, prepared)
    return prepared


def read_streams(payload: dict[str, Any]) -> Prepared:
    """In a worker: the streams ``[start, end)`` of a multistream dump, read, parsed and
    cleaned into documents; ``info`` has the page counts and a fault, if any."""
    started = time.process_time()
    path = Path(payload["path"])
    data, fault = read_range(path, payload["start"], payload["end"])
    stats = DumpStats()
    reader = _PageReader(path, stats, payload["skip_through"], payload["max_page_bytes"])
    reader.base_url = payload["base_url"]
    try:
        for piece in (b"<mediawiki>", data, b"</mediawiki>", b""):
            reader.feed(piece)
    except expat.ExpatError as e:
        fault = fault or f"is truncated or corrupted ({e})"
    if reader.skipping and fault is None:
        fault = (f"never reaches page id {payload['skip_through']} where its index says it is; "
                 "the progress file or the index belongs to another dump")
    prepared = Prepared([], {"fault": fault,
                             "stats": {name: getattr(stats, name) for name in _COUNTED},
                             "skipped_titles": list(stats.skipped_titles)},
                        {"read": time.process_time() - started})
    _cleaned(reader.take(), payload["label_from"], payload["max_nesting"], prepared)
    return prepared


def streams_documents(batch: dict[str, Any]) -> list[Prepared]:
    """In a Ray actor: :func:`read_streams` for each JSON payload of a batch of rows."""
    return [read_streams(json.loads(str(task))) for task in batch["task"]]


class _Acceptor:
    """The builder's ``accept``: each piece of work's pages counted, in file order."""

    def __init__(self, stats: DumpStats, limit: int | None, seen: IdSet | None,
                 max_nesting: int | None) -> None:
        self.stats, self.limit = stats, limit
        self.seen, self.max_nesting = seen, max_nesting
        self.done = False
        self.fault: str | None = None

    def __call__(self, prepared: Prepared) -> list[Document]:
        if self.done or self.fault is not None:
            return []
        info, stats = prepared.info, self.stats
        for name, value in info.get("stats", {}).items():
            setattr(stats, name, getattr(stats, name) + value)
        stats.skipped_titles.extend(info.get("skipped_titles", ()))
        documents = iter(prepared.documents)
        kept: list[Document] = []
        for title, problem in info["outcomes"]:
            if problem is not None:
                self._skipped(title, problem)
                continue
            document = next(documents)
            if self.seen is not None and not self.seen.add(str(document.id)):
                stats.duplicates += 1
                logger.warning("page id %s appears again (%r); the first page with it is kept",
                               document.id, title)
                continue
            kept.append(document)
            stats.articles += 1
            if self.limit is not None and stats.articles >= self.limit:
                self.done = True
                return kept
        if info.get("fault"):
            self.fault = info["fault"]
        return kept

    def _skipped(self, title: str, problem: str) -> None:
        stats = self.stats
        if problem == "empty":
            stats.empty += 1
            return
        stats.skipped_titles.append(title)
        if problem == "too deeply nested":
            stats.too_nested += 1
            logger.warning("%r has more than %s tags open at once; skipped (raise max_nesting "
                           "to keep it)", title, self.max_nesting)
        else:
            stats.parse_failures += 1
            logger.warning("could not parse the wikitext of %r (%s); skipped", title, problem)


class DumpSource:
    """A dump file to feed an :class:`~simtools.index.builder.IndexBuilder` (see the module
    docstring); ``kind`` is "multistream" when its index was found (or given), else "plain"."""

    def __init__(self, path: Path, *, index_file: str | os.PathLike[str] | None = None,
                 label_from: LabelFrom = LabelFrom.NONE, workers: int = 1,
                 caps: dict[str, int | None] | None = None) -> None:
        self.path = Path(path)
        self.index_file = Path(index_file) if index_file is not None else find_index(path)
        if self.index_file is not None and not self.index_file.is_file():
            raise FileNotFoundError(f"multistream index {self.index_file} does not exist")
        self.kind = "plain" if self.index_file is None else "multistream"
        self.label_from = label_from
        self.workers = workers
        self.caps = dict(caps or {"max_page_bytes": None, "max_nesting": None})

    def feed(self, builder: Any, *, stats: DumpStats, limit: int | None,
             skip_through: int | None, on_article: Callable[[int], None]) -> None:
        """Push every article (after ``skip_through``, up to ``limit``) into ``builder``, then
        finish it; a fault in the file is raised after the articles before it are in."""
        if self.kind == "plain":
            self._fan_out(builder, stats, limit, skip_through, on_article)
        else:
            self._by_offsets(builder, stats, limit, skip_through, on_article)

    def _fan_out(self, builder: Any, stats: DumpStats, limit: int | None,
                 skip_through: int | None, on_article: Callable[[int], None]) -> None:
        accept = _Acceptor(stats, limit, None, self.caps["max_nesting"])
        builder.accept, builder.on_accept = accept, on_article
        raw = _raw_pages(self.path, stats, skip_through, self.caps["max_page_bytes"])
        fault: DumpError | None = None
        try:
            for chunk in _chunks(raw, CHUNK, builder.seconds):
                if isinstance(chunk, DumpError):
                    fault = chunk
                    break
                if accept.done:
                    break
                builder.push_task(clean_raw_pages, (chunk, self.label_from.value,
                                                    self.caps["max_nesting"]))
            builder.finish()
        finally:
            raw.close()
        if fault is not None:
            if not fault.partial:
                raise fault
            raise DumpError(f"{fault}; {stats.articles} article(s) were read before the fault",
                            pages_read=stats.articles) from fault

    def _by_offsets(self, builder: Any, stats: DumpStats, limit: int | None,
                    skip_through: int | None, on_article: Callable[[int], None]) -> None:
        tasks, accept = self.plan(stats, limit, skip_through)
        builder.accept, builder.on_accept = accept, on_article
        for payload in tasks:
            if accept.done or accept.fault is not None:
                break
            builder.push_task(read_streams, payload)
        builder.finish()
        self.raise_fault(accept, stats)

    def feed_ray(self, builder: Any, *, stats: DumpStats, limit: int | None,
                 skip_through: int | None, on_article: Callable[[int], None],
                 address: str | None = None) -> None:
        """As :meth:`feed`, the work running on Ray actors (a multistream dump only). Until the
        encoder is fitted the work runs here; then the rest goes to the actors."""
        if self.kind != "multistream":
            raise InputError(f"{self.path} is a single-stream dump, which only this process "
                             "can read (from its start); the Ray engine reads a multistream "
                             "dump (pages-articles-multistream.xml.bz2 with its "
                             "-multistream-index.txt.bz2) by offsets. Use it, or the local "
                             "engine with workers")
        tasks, accept = self.plan(stats, limit, skip_through)
        builder.accept, builder.on_accept = accept, on_article

        def stop() -> bool:
            return accept.done or accept.fault is not None

        first = 0
        while first < len(tasks) and not builder.fitted and not stop():
            builder.push_task(read_streams, tasks[first])
            first += 1
        builder.finish()  # the encoder is fitted and what was read here is in
        if first < len(tasks) and not stop():
            from ..engines.ray_build import run_on_ray
            from ..engines.ray_session import connect

            ray = connect(address, num_cpus=self.workers)
            items = [{"task": json.dumps(task)} for task in tasks[first:]]
            dataset = ray.data.from_items(items, override_num_blocks=len(items))
            run_on_ray(dataset, streams_documents, builder.encoder,
                       workers=min(self.workers, len(items)),
                       batch_size=1, take=builder.take, stop=stop)
        builder.finish()
        self.raise_fault(accept, stats)

    def plan(self, stats: DumpStats, limit: int | None,
             skip_through: int | None) -> tuple[list[dict[str, Any]], _Acceptor]:
        """A multistream dump's pieces of work (payloads of :func:`read_streams`, in file
        order, from the one holding ``skip_through``) and the ``accept`` that takes their
        results; for an engine that runs them elsewhere too."""
        assert self.index_file is not None
        entries = read_index(self.index_file)
        base_url = _base_url(self.path, read_header(self.path, entries[0][0]))
        ranges = stream_ranges(entries, PAGES_PER_RANGE)
        seen = IdSet()
        first = 0
        if skip_through is not None:
            first = next((i for i, r in enumerate(ranges) if skip_through in r.pageids), -1)
            if first < 0:
                raise DumpError(f"page id {skip_through} is not in {self.index_file}; the "
                                "progress file belongs to another dump: rebuild without "
                                "resume=True")
            for r in ranges[:first]:
                for pageid in r.pageids:
                    seen.add(str(pageid))
        tasks = [{"path": str(self.path.resolve()), "start": r.start, "end": r.end,
                  "base_url": base_url, "label_from": self.label_from.value,
                  "skip_through": skip_through if i == 0 else None, **self.caps}
                 for i, r in enumerate(ranges[first:])]
        return tasks, _Acceptor(stats, limit, seen, self.caps["max_nesting"])

    def raise_fault(self, accept: _Acceptor, stats: DumpStats) -> None:
        """Raise the fault the work met, if any (after the articles before it are in)."""
        if accept.fault is not None:
            raise DumpError(f"{self.path} {accept.fault}; {stats.articles} article(s) were read "
                            "before the fault", pages_read=stats.articles, partial=True)


def _chunks(raw: Iterator[_RawPage], size: int,
            seconds: dict[str, float]) -> Iterator[list[_RawPage] | DumpError]:
    """Lists of ``size`` raw pages; a fault in the file comes after the pages before it. The
    CPU time spent reading (bz2 and XML, in this process) is added to ``seconds["read"]``."""
    chunk: list[_RawPage] = []
    try:
        while True:
            started = time.process_time()
            try:
                page = next(raw)
            finally:
                seconds["read"] = seconds.get("read", 0.0) + time.process_time() - started
            chunk.append(page)
            if len(chunk) == size:
                yield chunk
                chunk = []
    except StopIteration:
        pass
    except DumpError as e:
        if chunk:
            yield chunk
        yield e
        return
    if chunk:
        yield chunk


def _base_url(path: Path, header: bytes) -> str:
    """The wiki's article address, from the header's ``<siteinfo><base>`` (and a root check)."""
    reader = _PageReader(path, DumpStats(), None, None)
    try:
        reader.feed(header + b"</mediawiki>")
        reader.feed(b"")
    except expat.ExpatError as e:
        raise DumpError(f"{path}: its header stream is not well-formed XML ({e})") from e
    return reader.base_url
