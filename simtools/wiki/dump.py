"""Stream articles out of a MediaWiki ``pages-articles`` XML dump, cleaned into plain text.

The dump is read in 64 KiB pieces (``bz2.open``) and fed to an expat parser whose handlers keep
only the fields used, one page at a time, so memory stays flat however large the file is.
Redirects and pages outside the article namespace (``ns != 0``) are skipped. Wikitext is parsed
with mwparserfromhell and rendered by :func:`clean_wikitext`: templates, references, tables,
files and images, categories, comments and HTML tags go; link text and heading text stay.
``[[Category:...]]`` links are collected as the page's categories (usable as labels).

Hostile or broken input costs bounded work. A page with more than ``max_page_bytes`` of
wikitext (default 2 MiB, MediaWiki's own limit on a page) is skipped, its text dropped as it
streams past rather than held; markup with more than ``max_nesting`` tags open at once (default
50; the sample dump's articles reach 3), on which mwparserfromhell would spend time growing with
nesting times length, is skipped; a second page with an id already seen is skipped. Each is
counted in :class:`DumpStats`.

A file that is not bz2 (uncompressed XML is accepted too), not a MediaWiki export, or cut short
raises :class:`DumpError` naming the file and how many pages were read; pages read before the
fault have already been yielded, so a caller never loses them.
"""

from __future__ import annotations

import bz2
import io
import logging
import os
from collections import deque
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any
from xml.parsers import expat

from ..errors import InputError
from .dump_types import DumpError, DumpPage, DumpStats, _RawPage
from .dump_xml import _PageReader
from .wikitext import DEFAULT_MAX_NESTING, MarkupTooDeepError, clean_wikitext

__all__ = ["DEFAULT_MAX_NESTING", "DEFAULT_MAX_PAGE_BYTES", "DumpError", "DumpPage", "DumpStats",
           "MarkupTooDeepError", "clean_wikitext", "iter_dump"]

logger = logging.getLogger(__name__)

#: Pages with more wikitext than this (UTF-8 bytes) are skipped: MediaWiki's own default limit
#: on a page ($wgMaxArticleSize, which Wikipedia keeps), so no page Wikipedia accepted is lost.
DEFAULT_MAX_PAGE_BYTES = 2 * 1024 * 1024
_READ_SIZE = 1 << 16
_TOO_NESTED = "too deeply nested"
#: a raw page and what cleaning made of it: the page, or the reason it was skipped
_Cleaned = tuple[_RawPage, tuple[DumpPage | None, str | None]]

def _open(path: Path) -> io.BufferedIOBase:
    try:
        with open(path, "rb") as probe:
            head = probe.read(64)
    except FileNotFoundError:
        raise FileNotFoundError(f"dump file {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a folder; give a pages-articles .xml.bz2 file") from None
    if head.startswith(b"BZh"):
        return bz2.open(path, "rb")
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return open(path, "rb")  # an already decompressed dump
    raise DumpError(f"{path} is neither bz2 nor XML (it starts {head[:8]!r}); give a "
                    "pages-articles .xml.bz2 dump as published on dumps.wikimedia.org")


def iter_dump(
    path: str | os.PathLike[str],
    *,
    limit: int | None = None,
    skip_through: int | None = None,
    stats: DumpStats | None = None,
    workers: int = 1,
    max_page_bytes: int | None = DEFAULT_MAX_PAGE_BYTES,
    max_nesting: int | None = DEFAULT_MAX_NESTING,
) -> Iterator[DumpPage]:
    """Yield the articles of a dump in file order, cleaned.

    ``limit`` stops after that many articles; ``skip_through`` (a page id) skips every article
    up to and including that one without cleaning it (for resuming). ``stats`` is updated as the
    stream advances. ``workers > 1`` cleans wikitext in that many processes (the file is still
    read by this one, and pages come out in file order). Pages with more than ``max_page_bytes``
    of wikitext, or more than ``max_nesting`` tags open at once, are skipped and counted
    (``None``: no limit); so is a page whose id was met before. Raises :class:`DumpError` for a
    file that is not a dump or ends early, after yielding every article read before the fault.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of pages, got {limit!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    for name, value in (("max_page_bytes", max_page_bytes), ("max_nesting", max_nesting)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InputError(f"{name} must be a positive integer or None (no limit), "
                             f"got {value!r}")
    path = Path(path)
    stats = stats if stats is not None else DumpStats()
    raw = _raw_pages(path, stats, skip_through, max_page_bytes)
    cleaned = (_clean_serially(raw, max_nesting) if workers == 1
               else _clean_in_parallel(raw, workers, max_nesting))
    try:
        for source, (page, problem) in cleaned:
            if page is None:
                if problem == "empty":
                    stats.empty += 1
                elif problem == _TOO_NESTED:
                    stats.too_nested += 1
                    stats.skipped_titles.append(source.title)
                    logger.warning("%r has more than %d tags open at once; skipped (raise "
                                   "max_nesting to keep it)", source.title, max_nesting)
                else:
                    stats.parse_failures += 1
                    stats.skipped_titles.append(source.title)
                    logger.warning("could not parse the wikitext of %r (%s); skipped",
                                   source.title, problem)
                continue
            stats.articles += 1
            yield page
            if limit is not None and stats.articles >= limit:
                return
    except DumpError as e:
        if not e.partial:
            raise
        raise DumpError(f"{e}; {stats.articles} article(s) were read before the fault",
                        pages_read=stats.articles) from e
    finally:
        cleaned.close()
        raw.close()


def _clean_page(raw: _RawPage,
                max_nesting: int | None) -> tuple[DumpPage | None, str | None]:
    """``(page, None)``, or ``(None, "empty")``, ``(None, _TOO_NESTED)``, or ``(None, reason it
    could not be parsed)``."""
    if not raw.wikitext.strip():
        return None, "empty"
    try:
        text, categories = clean_wikitext(raw.wikitext, max_nesting=max_nesting)
    except ImportError:
        raise
    except MarkupTooDeepError:
        return None, _TOO_NESTED
    except Exception as e:  # mwparserfromhell can fail on pathological markup: skip that page
        return None, f"{type(e).__name__}: {e}"
    if not text:
        return None, "empty"
    return DumpPage(title=raw.title, text=text, pageid=raw.pageid, revision_id=raw.revision_id,
                    timestamp=raw.timestamp, categories=tuple(categories),
                    base_url=raw.base_url), None


def _clean_chunk(chunk: list[_RawPage],
                 max_nesting: int | None) -> list[tuple[DumpPage | None, str | None]]:
    return [_clean_page(raw, max_nesting) for raw in chunk]


def _clean_serially(raw: Iterator[_RawPage],
                    max_nesting: int | None) -> Generator[_Cleaned, None, None]:
    for page in raw:
        yield page, _clean_page(page, max_nesting)


def _clean_in_parallel(raw: Generator[_RawPage, None, None], workers: int,
                       max_nesting: int | None,
                       chunk_size: int = 32) -> Generator[_Cleaned, None, None]:
    """Clean chunks in worker processes, at most ``2 * workers`` chunks in flight (bounded
    memory), yielding in file order. A fault in the file is raised after the chunks before it."""
    from concurrent.futures import ProcessPoolExecutor

    pending: deque[tuple[list[_RawPage], Any]] = deque()
    fault: DumpError | None = None
    exhausted = False
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        while True:
            while not exhausted and len(pending) < 2 * workers:
                chunk: list[_RawPage] = []
                try:
                    while len(chunk) < chunk_size:
                        chunk.append(next(raw))
                except StopIteration:
                    exhausted = True
                except DumpError as e:
                    fault, exhausted = e, True
                if chunk:
                    pending.append((chunk, pool.submit(_clean_chunk, chunk, max_nesting)))
            if not pending:
                break
            chunk, future = pending.popleft()
            yield from zip(chunk, future.result(), strict=True)
        if fault is not None:
            raise fault
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        raw.close()


def _raw_pages(path: Path, stats: DumpStats, skip_through: int | None,
               max_page_bytes: int | None) -> Generator[_RawPage, None, None]:
    """The article pages of the file, uncleaned, as the file is read."""
    reader = _PageReader(path, stats, skip_through, max_page_bytes)
    handle = _open(path)
    try:
        while True:
            fault: tuple[DumpError, BaseException] | None = None
            chunk = b""
            try:
                # read1: what is decoded before a cut in the file comes out before the error.
                chunk = handle.read1(_READ_SIZE)
                reader.feed(chunk)
            except (EOFError, OSError, expat.ExpatError) as e:
                fault = _fault(e, path, stats), e
            # Pages completed before a fault in the same piece still come out.
            yield from reader.take()
            if fault is not None:
                raise fault[0] from fault[1]
            if not chunk:
                break
        if reader.skipping:
            raise DumpError(f"page id {skip_through} was never reached in {path} "
                            f"({stats.pages_seen} pages read); the progress file belongs to "
                            "another dump: rebuild without resume=True")
    finally:
        handle.close()


def _fault(error: BaseException, path: Path, stats: DumpStats) -> DumpError:
    """Every way a dump can break, as a DumpError."""
    if isinstance(error, EOFError):
        return DumpError(f"{path} is truncated ({error}); download the dump again", partial=True)
    if isinstance(error, expat.ExpatError):
        if stats.pages_seen == 0:
            return DumpError(f"{path} is not well-formed XML ({error}); give a MediaWiki "
                             "pages-articles dump")
        return DumpError(f"{path} is truncated or corrupted ({error}); download the dump "
                         "again", partial=True)
    return DumpError(f"{path} cannot be decompressed ({error}); check the file or download it "
                     "again", partial=True)


# Where each kept field sits, below the root.
