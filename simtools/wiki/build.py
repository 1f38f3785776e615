"""Turn Wikipedia pages into a searchable :class:`~simtools.index.Index`: small sets at once,
dumps in batches, with checkpoints that let an interrupted build resume.

Online pages are few: the encoder is fitted on all of them, then they are added in one go.
A dump is streamed: articles are encoded and added ``batch_size`` at a time, and every
``checkpoint_every`` articles the index folder is saved atomically together with
``wiki_build.json`` (the dump it comes from, the settings, the last page id done). A rerun with
``resume=True`` loads that folder and skips the dump up to that page id without cleaning the
pages it skips.

Encoders for a stream: ``hashing`` (the default) has no vocabulary, so every batch, first or
after a resume, is encoded the same way. ``count``/``tfidf`` fit their vocabulary (and idf) on
the first ``fit_pages`` articles and keep it frozen; words first seen later are ignored. The
fitted encoder is saved in the index folder, so a resumed build uses the same one.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from .._validation import check_choice
from ..data import Document
from ..errors import InputError
from ..folders import FolderWriter, open_folder
from ..persistence import FormatError, member, read_json, write_json
from .dump import (
    DEFAULT_MAX_NESTING,
    DEFAULT_MAX_PAGE_BYTES,
    DumpError,
    DumpPage,
    DumpStats,
    iter_dump,
)

__all__ = ["BuildReport", "LabelFrom", "PageLike", "build_dump_index", "build_index",
           "peak_memory_mib"]

logger = logging.getLogger(__name__)

PROGRESS_NAME = "wiki_build.json"
PROGRESS_VERSION = 1
# Encoded batches are handed to the index this many rows at a time (see IndexBuilder).
ADD_EVERY = 8192


class LabelFrom(str, Enum):
    """Where a page's label comes from."""

    NONE = "none"
    CATEGORY = "category"  # the page's first [[Category:...]]
    TITLE = "title"  # the page title (nearest-page classification)


class PageLike(Protocol):
    """What :func:`build_index` needs of a page (``FetchedPage`` and ``DumpPage`` both fit)."""

    @property
    def title(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def pageid(self) -> int: ...

    def metadata(self) -> dict[str, Any]: ...


def _label(page: PageLike, label_from: LabelFrom) -> str | None:
    if label_from is LabelFrom.TITLE:
        return page.title
    if label_from is LabelFrom.CATEGORY:
        categories = getattr(page, "categories", ())
        return categories[0] if categories else None
    return None


def _make_index(encoder: Any, metric: str) -> Any:
    from ..encoders import make_encoder
    from ..index import Index

    return Index(make_encoder(encoder) if isinstance(encoder, str) else encoder, metric=metric)


def peak_memory_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory so far, in MiB (``ru_maxrss``): of this process by default, of the
    largest finished child (a cleaning worker) with ``resource.RUSAGE_CHILDREN``."""
    peak = resource.getrusage(who).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def page_document(page: PageLike, label_from: LabelFrom) -> Document:
    """A fetched or dump page as the document the index builder takes (id: its page id)."""
    metadata = dict(page.metadata())
    source = str(metadata.pop("source", "wikipedia"))
    return Document(page.text, page.title, _label(page, label_from), source, metadata,
                    id=str(page.pageid))


def build_index(pages: Sequence[PageLike], *, encoder: Any = "count", metric: str = "cosine",
                label_from: str | LabelFrom = "title") -> Any:
    """An index over ``pages`` (ids are page ids), the encoder fitted on their texts."""
    from ..index.build import build_index as build_documents

    label_kind = check_choice(label_from, LabelFrom, name="label source")
    if not pages:
        raise InputError("no pages to index; fetch at least one page first")
    return build_documents([page_document(page, label_kind) for page in pages],
                           encoder=encoder, metric=metric)


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
    seconds: float = 0.0
    pages_per_s: float = 0.0
    cpu_seconds: float = 0.0
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


def _read_progress(out: Path) -> Any:
    """The progress record saved with the index at ``out``, or None (no index, or no record)."""
    if not (out / "config.json").is_file():
        return None
    with open_folder(out, kind="index") as folder:
        path = member(folder, PROGRESS_NAME, required=False)
        return read_json(path) if os.path.lexists(path) else None


def _load_for_resume(out: Path, progress: Any,
                     settings: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    from ..index import Index

    if not isinstance(progress, dict) or progress.get("format_version") != PROGRESS_VERSION:
        raise FormatError(f"{out / PROGRESS_NAME} is not a progress file this simtools reads; "
                          "rebuild without resume=True")
    differ = {key: (progress.get("settings", {}).get(key), value)
              for key, value in settings.items() if progress.get("settings", {}).get(key) != value}
    if differ:
        said = ", ".join(f"{k}: was {old!r}, now {new!r}" for k, (old, new) in differ.items())
        raise ValueError(f"cannot resume {out}: it was built with other settings ({said}); "
                         "use the same dump and options, or rebuild without resume=True")
    index = Index.load(out, mmap=False)
    return index, progress


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
    force: bool = False,
    max_page_bytes: int | None = DEFAULT_MAX_PAGE_BYTES,
    max_nesting: int | None = DEFAULT_MAX_NESTING,
    on_article: Callable[[int], None] | None = None,
) -> BuildReport:
    """Stream ``dump`` into an index saved at ``out``; returns a :class:`BuildReport`.

    ``limit`` caps the articles in the index (counting those of a resumed build).
    ``workers > 1`` cleans wikitext in that many processes (see :func:`iter_dump`).
    Pages over ``max_page_bytes`` of wikitext or ``max_nesting`` open tags, and pages whose id
    was met before, are skipped and counted in ``report.stats`` (see :func:`iter_dump`).
    ``on_article(n)`` is called as articles are read (``n`` new ones each time), for progress.
    A dump that breaks off raises :class:`DumpError` *after* the articles read so far were
    saved to ``out`` (the report is attached as ``error.report``).
    """
    label_kind = check_choice(label_from, LabelFrom, name="label source")
    for name, value in (("batch_size", batch_size), ("checkpoint_every", checkpoint_every),
                        ("fit_pages", fit_pages)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of articles, got {limit!r}")
    for name, cap in (("max_page_bytes", max_page_bytes), ("max_nesting", max_nesting)):
        if cap is not None and (not isinstance(cap, int) or cap < 1):
            raise ValueError(f"{name} must be a positive integer or None (no limit), got {cap!r}")
    dump, out = Path(dump), Path(out)
    if not dump.is_file():
        raise FileNotFoundError(f"dump file {dump} does not exist; check the path")
    settings = _settings(dump, encoder, metric, label_kind)
    report = BuildReport(out=str(out))
    # The writer lock is held for the whole build: no other process saves into ``out`` between
    # two checkpoints, and an unusable ``out`` fails before any page is read.
    writer = FolderWriter(out, kind="index", force=force)
    try:
        return _build(writer, dump, out, settings, report, label_kind, limit=limit,
                      batch_size=batch_size, checkpoint_every=checkpoint_every,
                      fit_pages=fit_pages, resume=resume, workers=workers,
                      on_article=on_article,
                      caps={"max_page_bytes": max_page_bytes, "max_nesting": max_nesting})
    finally:
        writer.close()


def _build(writer: FolderWriter, dump: Path, out: Path, settings: dict[str, Any],
           report: BuildReport, label_kind: LabelFrom, *, limit: int | None, batch_size: int,
           checkpoint_every: int, fit_pages: int, resume: bool, workers: int,
           on_article: Callable[[int], None] | None, caps: dict[str, int | None]) -> BuildReport:
    skip_through: int | None = None
    saved = _read_progress(out)
    if resume and saved is not None:
        index, progress = _load_for_resume(out, saved, settings)
        skip_through = int(progress["last_pageid"])
        report.resumed_after_pageid = skip_through
        if progress.get("exhausted"):
            logger.info("%s already holds the whole dump (%d articles)", out, len(index))
            report.articles_indexed, report.complete = len(index), True
            return report
    else:
        if resume:
            logger.info("nothing to resume in %s; starting from the beginning", out)
        elif isinstance(saved, dict) and not saved.get("complete", True):
            raise ValueError(f"{out} holds an unfinished build; pass resume=True to continue it, "
                             "or delete the folder to start again")
        index = _make_index(settings["encoder"], settings["metric"])
        progress = {}
    builder = _DumpBuild(index, writer, settings, label_kind, report, fit_pages=fit_pages,
                             batch_size=batch_size, checkpoint_every=checkpoint_every)
    remaining = None if limit is None else limit - len(index)
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    try:
        if remaining is None or remaining > 0:
            pages = iter_dump(dump, limit=remaining, skip_through=skip_through,
                              stats=report.stats, workers=workers, **caps)
            for page in pages:
                builder.push(page)
                if on_article is not None:
                    on_article(1)
        builder.exhausted = remaining is None or report.articles_this_run < remaining
        builder.finish(complete=True)
    except DumpError as e:
        builder.finish(complete=False, error=str(e))
        report.error = str(e)
        if len(builder.index) == 0:
            raise
        error = DumpError(f"{e}; the {len(builder.index)} article(s) read before it are "
                          f"indexed in {out}", pages_read=e.pages_read)
        error.report = report  # type: ignore[attr-defined]
        raise error from e
    except KeyboardInterrupt:
        builder.finish(complete=False, error="interrupted")
        raise
    finally:
        report.seconds = time.perf_counter() - start
        report.pages_per_s = report.articles_this_run / report.seconds if report.seconds else 0.0
        report.cpu_seconds = _cpu_seconds() - cpu_start
        report.peak_memory_mib = peak_memory_mib()
        if workers > 1:
            report.worker_peak_memory_mib = peak_memory_mib(resource.RUSAGE_CHILDREN)
        report.articles_indexed = len(builder.index)
    return report


class _DumpBuild:
    """The dump's use of the one :class:`~simtools.index.builder.IndexBuilder`: pages become
    documents, and every checkpoint saves the progress record beside the index."""

    def __init__(self, index: Any, writer: FolderWriter, settings: dict[str, Any],
                 label_from: LabelFrom, report: BuildReport, *, fit_pages: int, batch_size: int,
                 checkpoint_every: int) -> None:
        from ..index.builder import IndexBuilder

        self.index = index
        self.out = writer.path
        self.settings = settings
        self.label_from = label_from
        self.report = report
        self.exhausted = False
        self._state: dict[str, Any] = {"complete": False, "error": None}

        def skipped(_: Any) -> None:
            report.skipped_no_tokens += 1

        # A vocabulary-free encoder is "fitted" by its first batch; others wait for fit_pages.
        fit_first = batch_size if settings["encoder"] == "hashing" else fit_pages
        self.builder = IndexBuilder(index, fit_first=fit_first, batch_size=batch_size,
                                    add_every=ADD_EVERY, writer=writer,
                                    checkpoint_every=checkpoint_every,
                                    extra_files=self._write_progress, on_skip=skipped)

    def push(self, page: DumpPage) -> None:
        self.report.articles_this_run += 1
        checkpoints = self.builder.checkpoints
        self.builder.push(page_document(page, self.label_from))
        if self.builder.checkpoints != checkpoints:
            self._logged()

    def finish(self, *, complete: bool, error: str | None = None) -> None:
        self.builder.finish()
        if len(self.index) == 0:
            if error is None:
                raise InputError("the dump holds no article with text; nothing was indexed")
            return
        self._state = {"complete": complete, "error": error}
        self.builder.checkpoint()
        self._logged()
        self.report.complete = complete

    def _last_pageid(self) -> int | None:
        last = self.builder.last
        return int(last.id) if last is not None and last.id is not None \
            else self.report.resumed_after_pageid

    def _write_progress(self, folder: Path) -> None:
        complete = self._state["complete"]
        write_json(folder / PROGRESS_NAME, {
            "format_version": PROGRESS_VERSION, "settings": self.settings,
            "last_pageid": self._last_pageid(), "articles": len(self.index),
            "complete": complete, "exhausted": complete and self.exhausted,
            "error": self._state["error"],
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

    def _logged(self) -> None:
        self.report.checkpoints = self.builder.checkpoints
        logger.info("checkpoint: %d articles in %s (last page id %s)", len(self.index),
                    self.out, self._last_pageid())
