"""Turn Wikipedia pages into a searchable :class:`~simtools.index.Index`: small sets at once,
dumps in batches, with checkpoints that let an interrupted build resume.

Both go through the one :class:`~simtools.index.builder.IndexBuilder`. Online pages are few:
:func:`page_documents` makes them documents for :func:`simtools.index.build.build_index`. A dump
is streamed (:func:`build_dump_index`): articles are encoded and added ``batch_size`` at a
time, into shards of ``shard_size`` articles, and every ``checkpoint_every`` articles the
folder is saved atomically together with the progress record ``wiki_build.json`` (the dump it
comes from, the settings, the last page id done). A rerun with ``resume=True`` reopens that
folder and skips the dump up to that page id without cleaning the pages it skips. A build that
stays within one shard is saved as an ordinary one-folder index, as before shards existed.

Encoders for a stream: ``hashing`` (the default) has no vocabulary, so every batch, first or
after a resume, is encoded the same way. ``count``/``tfidf`` fit their vocabulary (and idf) on
the first ``fit_pages`` articles and keep it frozen; words first seen later are ignored. The
fitted encoder is saved in the index folder, so a resumed build uses the same one.
"""

from __future__ import annotations

import logging
import os
import resource
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._validation import check_choice
from ..data import Document
from ..engines.work import peak_rss_mib as peak_memory_mib
from ..errors import InputError
from ..folders import FolderWriter
from ..index.sharded import DEFAULT_SHARD_SIZE, check_shard_size
from ..index.shards_store import read_progress
from ..persistence import FormatError
from .dump import (
    DEFAULT_MAX_NESTING,
    DEFAULT_MAX_PAGE_BYTES,
    DumpError,
    DumpStats,
)
from .pages import LabelFrom, PageLike, page_document, page_documents

__all__ = ["BuildReport", "LabelFrom", "PageLike", "build_dump_index", "build_index",
           "page_document", "page_documents", "peak_memory_mib"]

logger = logging.getLogger(__name__)

PROGRESS_NAME = "wiki_build.json"
PROGRESS_VERSION = 1
# Encoded batches are handed to the index this many rows at a time (see IndexBuilder).
ADD_EVERY = 8192


def _make_index(encoder: Any, metric: str) -> Any:
    from ..encoders import make_encoder
    from ..index import Index

    return Index(make_encoder(encoder) if isinstance(encoder, str) else encoder, metric=metric)


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def build_index(pages: Sequence[PageLike], *, encoder: Any = "count", metric: str = "cosine",
                label_from: str | LabelFrom = "title") -> Any:
    """An index over ``pages`` (ids are page ids), the encoder fitted on their texts.

    Deprecated: the one builder is :func:`simtools.index.build.build_index`; use
    ``build_index(page_documents(pages), encoder=..., metric=...)``.
    """
    warnings.warn("simtools.wiki.build_index is deprecated: use simtools.index.build.build_index"
                  "(simtools.wiki.build.page_documents(pages), ...)", DeprecationWarning,
                  stacklevel=2)
    from ..index.build import build_index as build_documents

    documents = page_documents(pages, label_from=label_from)
    if not documents:
        raise InputError("no pages to index; fetch at least one page first")
    return build_documents(documents, encoder=encoder, metric=metric)


# -- streaming a dump ------------------------------------------------------------------------
@dataclass
class BuildReport:
    """What a dump build did; ``error`` is set when the dump broke off (pages kept)."""

    out: str
    articles_indexed: int = 0
    articles_this_run: int = 0
    skipped_no_tokens: int = 0
    resumed_after_pageid: int | None = None
    checkpoints: int = 0
    shards: int = 1
    workers: int = 1
    engine: str = "local"
    reader: str = "plain"  # "plain" (one stream, read here) or "multistream" (by offsets)
    seconds: float = 0.0
    pages_per_s: float = 0.0
    cpu_seconds: float = 0.0
    #: CPU seconds by stage (read: bz2 and XML, clean: wikitext, encode), over every process
    cpu_seconds_by_stage: dict[str, float] = field(default_factory=dict)
    peak_memory_mib: float = 0.0
    worker_peak_memory_mib: float = 0.0
    complete: bool = False
    error: str | None = None
    stats: DumpStats = field(default_factory=DumpStats)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["stats"].pop("skipped_titles", None)
        return record


def _settings(dump: Path, encoder: str, metric: str, label_from: LabelFrom) -> dict[str, Any]:
    return {"dump": dump.name, "dump_bytes": dump.stat().st_size, "encoder": encoder,
            "metric": metric, "label_from": label_from.value}


def _check_resumable(out: Path, progress: Any, settings: dict[str, Any]) -> None:
    if not isinstance(progress, dict) or progress.get("format_version") != PROGRESS_VERSION:
        raise FormatError(f"{out / PROGRESS_NAME} is not a progress file this simtools reads; "
                          "rebuild without resume=True")
    saved = progress.get("settings", {})
    differ = {key: (saved.get(key), value) for key, value in settings.items()
              if saved.get(key) != value}
    if differ:
        said = ", ".join(f"{k}: was {old!r}, now {new!r}" for k, (old, new) in differ.items())
        raise ValueError(f"cannot resume {out}: it was built with other settings ({said}); "
                         "use the same dump and options, or rebuild without resume=True")


def _check_options(**values: Any) -> None:
    for name in ("batch_size", "checkpoint_every", "fit_pages", "workers"):
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    check_shard_size(values["shard_size"])
    if values["limit"] is not None and values["limit"] < 1:
        raise ValueError(f"limit must be a positive number of articles, got {values['limit']!r}")
    for name in ("max_page_bytes", "max_nesting"):
        cap = values[name]
        if cap is not None and (not isinstance(cap, int) or cap < 1):
            raise ValueError(f"{name} must be a positive integer or None (no limit), got {cap!r}")


def build_dump_index(
    dump: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    encoder: str = "hashing",
    metric: str = "cosine",
    label_from: str | LabelFrom = "none",
    limit: int | None = None,
    batch_size: int = 256,
    checkpoint_every: int = 10_000,
    fit_pages: int = 2_000,
    resume: bool = False,
    workers: int = 1,
    shard_size: int = DEFAULT_SHARD_SIZE,
    index_file: str | os.PathLike[str] | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    force: bool = False,
    max_page_bytes: int | None = DEFAULT_MAX_PAGE_BYTES,
    max_nesting: int | None = DEFAULT_MAX_NESTING,
    on_article: Callable[[int], None] | None = None,
) -> BuildReport:
    """Stream ``dump`` into an index saved at ``out``; returns a :class:`BuildReport`.

    ``limit`` caps the articles in the index (counting those of a resumed build).
    ``workers > 1`` cleans wikitext and encodes in that many processes, this one only merging
    (see :mod:`simtools.wiki.dump_source`); the index is the same for any number of workers.
    A multistream dump (``*-multistream.xml.bz2``) is read by byte offset from its
    ``-multistream-index.txt.bz2`` (found beside it, or given as ``index_file``), the workers
    reading side by side. ``engine="ray"`` runs that work on Ray actors instead
    (:mod:`simtools.engines.ray_build`; a multistream dump only), joining the cluster at
    ``ray_address`` (or ``$RAY_ADDRESS``) or starting Ray here (``--engine ray``).
    ``shard_size`` articles go in each shard (a build within one shard is saved as one folder). Pages over ``max_page_bytes`` of wikitext or
    ``max_nesting`` open tags, and pages whose id was met before, are skipped and counted in
    ``report.stats``.
    ``on_article(n)`` is called as articles are read (``n`` new ones each time), for progress.
    A dump that breaks off raises :class:`DumpError` *after* the articles read so far were
    saved to ``out`` (the report is attached as ``error.report``).
    """
    label_kind = check_choice(label_from, LabelFrom, name="label source")
    _check_options(batch_size=batch_size, checkpoint_every=checkpoint_every,
                   fit_pages=fit_pages, workers=workers, shard_size=shard_size, limit=limit,
                   max_page_bytes=max_page_bytes, max_nesting=max_nesting)
    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine {engine!r}; valid values are 'local' and 'ray'")
    dump, out = Path(dump), Path(out)
    if not dump.is_file():
        raise FileNotFoundError(f"dump file {dump} does not exist; check the path")
    from .dump_source import DumpSource

    source = DumpSource(dump, index_file=index_file, label_from=label_kind, workers=workers,
                        caps={"max_page_bytes": max_page_bytes, "max_nesting": max_nesting})
    settings = _settings(dump, encoder, metric, label_kind)
    report = BuildReport(out=str(out), workers=workers, reader=source.kind, engine=engine)
    if engine == "ray":
        if source.kind != "multistream":
            source.feed_ray(None, stats=report.stats, limit=None, skip_through=None,
                            on_article=lambda n: None)  # refuses a single-stream dump, at once
        from ..engines.ray_session import connect

        # Ray missing, or the cluster unreachable: one line, before the folder is touched.
        connect(ray_address, num_cpus=workers)
    # The writer lock is held for the whole build: no other process saves into ``out`` between
    # two checkpoints, and an unusable ``out`` fails before any page is read.
    writer = FolderWriter(out, kind="index", force=force)
    try:
        build = _DumpBuild.start(writer, settings, label_kind, report, resume=resume,
                                 fit_pages=fit_pages, batch_size=batch_size,
                                 checkpoint_every=checkpoint_every, shard_size=shard_size,
                                 workers=1 if engine == "ray" else workers)
        if build is None:
            return report
        return _run(build, source, report, limit=limit, on_article=on_article,
                    ray_address=ray_address)
    finally:
        writer.close()


def _run(build: _DumpBuild, source: Any, report: BuildReport, *, limit: int | None,
         on_article: Callable[[int], None] | None, ray_address: str | None) -> BuildReport:
    remaining = None if limit is None else limit - build.builder.count
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    try:
        if remaining is None or remaining > 0:
            feed = dict(stats=report.stats, limit=remaining,
                        skip_through=report.resumed_after_pageid,
                        on_article=build.counted(on_article))
            if report.engine == "ray":
                source.feed_ray(build.builder, address=ray_address, **feed)
            else:
                source.feed(build.builder, **feed)
        build.exhausted = remaining is None or report.articles_this_run < remaining
        build.finish(complete=True)
    except DumpError as e:
        build.finish(complete=False, error=str(e))
        report.error = str(e)
        if build.builder.count == 0:
            raise
        error = DumpError(f"{e}; the {build.builder.count} article(s) read before it are "
                          f"indexed in {build.out}", pages_read=e.pages_read)
        error.report = report  # type: ignore[attr-defined]
        raise error from e
    except KeyboardInterrupt:
        build.builder.close()  # the work in flight is dropped: it is redone on resume
        build.finish(complete=False, error="interrupted")
        raise
    finally:
        build.builder.close()
        report.seconds = time.perf_counter() - start
        report.pages_per_s = report.articles_this_run / report.seconds if report.seconds else 0.0
        report.cpu_seconds = _cpu_seconds() - cpu_start
        report.cpu_seconds_by_stage = {k: round(v, 3) for k, v in build.builder.seconds.items()}
        report.peak_memory_mib = peak_memory_mib()
        peaks = build.builder.worker_peak_mib.values()
        report.worker_peak_memory_mib = max(peaks) if peaks else (
            peak_memory_mib(resource.RUSAGE_CHILDREN) if report.workers > 1 else 0.0)
        report.articles_indexed = build.builder.count
        report.shards = max(1, len(build.builder.sink.records) + bool(len(build.builder.index)))
    return report


class _DumpBuild:
    """The dump's use of the one :class:`~simtools.index.builder.IndexBuilder`: pages become
    documents, and every checkpoint saves the progress record with the index."""

    def __init__(self, builder: Any, out: Path, settings: dict[str, Any],
                 report: BuildReport) -> None:
        self.builder = builder
        self.out = out
        self.settings = settings
        self.report = report
        self.exhausted = False
        self._state: dict[str, Any] = {"complete": False, "error": None}

    @classmethod
    def start(cls, writer: FolderWriter, settings: dict[str, Any], label_from: LabelFrom,
              report: BuildReport, *, resume: bool, fit_pages: int, batch_size: int,
              checkpoint_every: int, shard_size: int, workers: int) -> _DumpBuild | None:
        """A new build, or the one to resume (None: it is complete already)."""
        from ..index.builder import IndexBuilder
        from ..index.shards_sink import ShardSink

        out = writer.path
        saved = read_progress(out, PROGRESS_NAME)
        holder: list[_DumpBuild] = []

        def progress(last: Document | None) -> dict[str, Any]:
            return holder[0]._progress(last)

        sink = None
        if resume and saved is not None:
            _check_resumable(out, saved, settings)
            sink, _ = ShardSink.reopen(writer, shard_size, progress_name=PROGRESS_NAME,
                                       progress=progress)
            report.resumed_after_pageid = int(saved["last_pageid"])
            if saved.get("exhausted"):
                logger.info("%s already holds the whole dump (%d articles)", out, sink.count)
                report.articles_indexed, report.complete = sink.count, True
                report.shards = max(1, len(sink.records) + bool(len(sink.open)))
                return None
        elif resume:
            logger.info("nothing to resume in %s; starting from the beginning", out)
        elif isinstance(saved, dict) and not saved.get("complete", True):
            raise ValueError(f"{out} holds an unfinished build; pass resume=True to continue it, "
                             "or delete the folder to start again")
        index = sink.open if sink is not None else _make_index(settings["encoder"],
                                                               settings["metric"])

        def skipped(_: Any) -> None:
            report.skipped_no_tokens += 1

        # A vocabulary-free encoder is "fitted" by its first batch; others wait for fit_pages.
        fit_first = batch_size if settings["encoder"] == "hashing" else fit_pages
        builder = IndexBuilder(index, fit_first=fit_first, batch_size=batch_size,
                               add_every=ADD_EVERY, writer=writer,
                               checkpoint_every=checkpoint_every, on_skip=skipped,
                               shard_size=shard_size, progress_name=PROGRESS_NAME,
                               progress=progress, workers=workers, sink=sink)
        build = cls(builder, out, settings, report)
        holder.append(build)
        return build

    def counted(self, on_article: Callable[[int], None] | None) -> Callable[[int], None]:
        """``on_article``, counting the articles of this run and logging checkpoints."""
        checkpoints = [self.builder.checkpoints]

        def one(n: int) -> None:
            self.report.articles_this_run += n
            if self.builder.checkpoints != checkpoints[0]:
                checkpoints[0] = self.builder.checkpoints
                self._logged()
            if on_article is not None:
                on_article(n)

        return one

    def finish(self, *, complete: bool, error: str | None = None) -> None:
        self.builder.finish()
        if self.builder.count == 0:
            if error is None:
                raise InputError("the dump holds no article with text; nothing was indexed")
            return
        self._state = {"complete": complete, "error": error}
        self.builder.checkpoint()
        self._logged()
        self.report.complete = complete

    def _last_pageid(self, last: Document | None) -> int | None:
        return int(last.id) if last is not None and last.id is not None \
            else self.report.resumed_after_pageid

    def _progress(self, last: Document | None) -> dict[str, Any]:
        complete = self._state["complete"]
        return {"format_version": PROGRESS_VERSION, "settings": self.settings,
                "last_pageid": self._last_pageid(last), "articles": self.builder.sink.count,
                "complete": complete, "exhausted": complete and self.exhausted,
                "error": self._state["error"],
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def _logged(self) -> None:
        self.report.checkpoints = self.builder.checkpoints
        logger.info("checkpoint: %d articles in %s (last page id %s)", self.builder.count,
                    self.out, self._last_pageid(self.builder.last))
