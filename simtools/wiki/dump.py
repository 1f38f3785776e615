"""Stream articles out of a MediaWiki ``pages-articles`` XML dump, cleaned into plain text.

The dump is read with ``bz2.open`` + ``xml.etree.ElementTree.iterparse`` and every ``<page>`` is
cleared (and detached from the root) once read, so memory stays flat however large the file is.
Redirects and pages outside the article namespace (``ns != 0``) are skipped. Wikitext is parsed
with mwparserfromhell and rendered by :func:`clean_wikitext`: templates, references, tables,
files and images, categories, comments and HTML tags go; link text and heading text stay.
``[[Category:...]]`` links are collected as the page's categories (usable as labels).

A file that is not bz2 (uncompressed XML is accepted too), not a MediaWiki export, or cut short
raises :class:`DumpError` naming the file and how many pages were read; pages read before the
fault have already been yielded, so a caller never loses them.
"""

from __future__ import annotations

import bz2
import logging
import os
import re
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

__all__ = ["DumpError", "DumpPage", "DumpStats", "clean_wikitext", "iter_dump"]

logger = logging.getLogger(__name__)

_EXPORT_NS = re.compile(r"^\{http://www\.mediawiki\.org/xml/export-[0-9.]+/\}")
# Link prefixes whose target is not article text: media, categories, other wikis' languages.
_DROP_LINK_PREFIXES = ("file:", "image:", "media:", "category:")
_LANGUAGE_LINK = re.compile(r"^[a-z]{2,3}(-[a-z]+)?:")
# Tags whose contents are not running text.
_DROP_TAGS = frozenset({
    "ref", "references", "table", "gallery", "math", "chem", "ce", "score", "timeline",
    "graph", "imagemap", "templatedata", "syntaxhighlight", "source", "pre", "code",
    "hiero", "inputbox", "mapframe", "maplink", "categorytree", "noinclude", "includeonly",
    "onlyinclude", "style", "script", "div",
})
_BREAK_TAGS = frozenset({"br", "p", "li", "dd", "dt", "tr", "hr"})
_MAGIC_WORD = re.compile(r"__[A-Z]+__|'{2,}")  # magic words; bold/italic quote runs
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_LEFTOVER = re.compile(r"\{\{|\}\}|\{\||\|\}|^[|!].*$", re.MULTILINE)
# Cheap pre-pass: references, comments, templates and tables make up most of an article's parse
# tree (citation templates inside <ref>), and none of them is kept, so they are cut out by a
# linear scan before mwparserfromhell builds the tree; it then parses only what is rendered.
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_REF = re.compile(r"<ref\b[^>]*/>|<ref\b[^>]*>.*?</ref\s*>", re.DOTALL | re.IGNORECASE)
_TEMPLATE_BRACES = re.compile(r"\{\{|\}\}")
_TABLE_MARKS = re.compile(r"^[ \t]*(\{\||\|\})", re.MULTILINE)


class DumpError(ValueError):
    """The dump file cannot be read (or cannot be read to its end)."""

    def __init__(self, message: str, *, pages_read: int = 0, partial: bool = False) -> None:
        super().__init__(message)
        self.pages_read = pages_read
        #: True when the fault came after some pages were read (truncation, corruption).
        self.partial = partial


@dataclass(frozen=True)
class DumpPage:
    """One article: cleaned text, identity and categories."""

    title: str
    text: str
    pageid: int
    revision_id: int | None
    timestamp: str | None
    categories: tuple[str, ...]
    base_url: str = "https://en.wikipedia.org/wiki/"

    @property
    def url(self) -> str:
        return self.base_url + quote(self.title.replace(" ", "_"), safe="/:(),'!*")

    def metadata(self) -> dict[str, Any]:
        """What an index stores beside the vector."""
        return {"source": "wikipedia-dump", "title": self.title, "pageid": self.pageid,
                "revision_id": self.revision_id, "timestamp": self.timestamp, "url": self.url,
                "categories": list(self.categories)}


@dataclass
class DumpStats:
    """Counts kept while streaming (updated in place, readable at any time)."""

    pages_seen: int = 0
    articles: int = 0
    redirects: int = 0
    other_namespaces: int = 0
    empty: int = 0
    parse_failures: int = 0
    skipped_titles: list[str] = field(default_factory=list)


# -- cleaning ---------------------------------------------------------------------------------
def clean_wikitext(wikitext: str) -> tuple[str, list[str]]:
    """Plain text and categories of a page's wikitext.

    Returns ``(text, categories)``: the text keeps paragraphs, link text and headings (each on
    its own line); categories are the ``[[Category:Name]]`` names in page order, without sort
    keys or duplicates.
    """
    try:
        import mwparserfromhell
        from mwparserfromhell import nodes
    except ImportError as e:
        raise ImportError("cleaning wikitext needs mwparserfromhell: "
                          "pip install 'simtools[wiki]'") from e

    wikitext = _REF.sub("", _COMMENT.sub("", wikitext))
    wikitext = _cut_nested(_cut_nested(wikitext, _TEMPLATE_BRACES, "{{"), _TABLE_MARKS, "{|")
    code = mwparserfromhell.parse(wikitext, skip_style_tags=True)
    pieces: list[str] = []
    categories: list[str] = []
    _render(code, pieces, categories, nodes)
    text = _MAGIC_WORD.sub("", "".join(pieces))
    text = _LEFTOVER.sub("", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return text, list(dict.fromkeys(categories))


def _cut_nested(text: str, marks: re.Pattern[str], opener: str) -> str:
    """``text`` without the outermost spans between balanced ``marks`` (openers and closers).

    As MediaWiki does, an opener never closed is literal text (only the opener itself is
    dropped); a stray closer is dropped.
    """
    kept: list[str] = []
    depth = 0
    start = 0
    outer_end = 0
    for match in marks.finditer(text):
        if match.group().strip() == opener:
            if depth == 0:
                kept.append(text[start:match.start()])
                outer_end = match.end()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                start = match.end()
        else:
            kept.append(text[start:match.start()])
            start = match.end()
    kept.append(text[outer_end:] if depth else text[start:])
    return "".join(kept)


def _render(code: Any, out: list[str], categories: list[str], nodes: Any) -> None:
    for node in code.nodes:
        if isinstance(node, nodes.Text):
            out.append(node.value)
        elif isinstance(node, nodes.Wikilink):
            target = str(node.title).strip()
            lowered = target.lower()
            if lowered.startswith("category:"):
                name = target.split(":", 1)[1].strip()
                if name:
                    categories.append(name)
            elif lowered.startswith(":category:"):
                _render(node.text if node.text is not None else node.title, out, categories, nodes)
            elif lowered.lstrip(":").startswith(_DROP_LINK_PREFIXES):
                continue
            elif _LANGUAGE_LINK.match(lowered) and node.text is None:
                continue  # interlanguage link such as [[fr:Tennis]]
            else:
                _render(node.text if node.text is not None else node.title, out, categories, nodes)
        elif isinstance(node, nodes.Heading):
            out.append("\n")
            _render(node.title, out, categories, nodes)
            out.append("\n")
        elif isinstance(node, nodes.Tag):
            tag = str(node.tag).strip().lower()
            if tag in _DROP_TAGS:
                continue
            if tag in _BREAK_TAGS:
                out.append("\n")
            if node.contents is not None:
                _render(node.contents, out, categories, nodes)
        elif isinstance(node, nodes.ExternalLink):
            if node.brackets and node.title is not None:
                _render(node.title, out, categories, nodes)
        elif isinstance(node, nodes.HTMLEntity):
            try:
                out.append(node.normalize())
            except ValueError:
                continue
        # Templates, template arguments and comments carry no running text.


# -- streaming --------------------------------------------------------------------------------
def _open(path: Path) -> IO[bytes]:
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
) -> Iterator[DumpPage]:
    """Yield the articles of a dump in file order, cleaned.

    ``limit`` stops after that many articles; ``skip_through`` (a page id) skips every article
    up to and including that one without cleaning it (for resuming). ``stats`` is updated as the
    stream advances. ``workers > 1`` cleans wikitext in that many processes (the file is still
    read by this one, and pages come out in file order). Raises :class:`DumpError` for a file
    that is not a dump or ends early, after yielding every article read before the fault.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of pages, got {limit!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    path = Path(path)
    stats = stats if stats is not None else DumpStats()
    raw = _raw_pages(path, stats, skip_through)
    cleaned = _clean_serially(raw) if workers == 1 else _clean_in_parallel(raw, workers)
    try:
        for source, (page, problem) in cleaned:
            if page is None:
                if problem == "empty":
                    stats.empty += 1
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


@dataclass(frozen=True)
class _RawPage:
    title: str
    pageid: int
    revision_id: int | None
    timestamp: str | None
    wikitext: str
    base_url: str


_Cleaned = tuple[_RawPage, tuple[DumpPage | None, str | None]]


def _clean_page(raw: _RawPage) -> tuple[DumpPage | None, str | None]:
    """``(page, None)``, or ``(None, "empty")``, or ``(None, reason it could not be parsed)``."""
    if not raw.wikitext.strip():
        return None, "empty"
    try:
        text, categories = clean_wikitext(raw.wikitext)
    except ImportError:
        raise
    except Exception as e:  # mwparserfromhell can fail on pathological markup: skip that page
        return None, f"{type(e).__name__}: {e}"
    if not text:
        return None, "empty"
    return DumpPage(title=raw.title, text=text, pageid=raw.pageid, revision_id=raw.revision_id,
                    timestamp=raw.timestamp, categories=tuple(categories),
                    base_url=raw.base_url), None


def _clean_chunk(chunk: list[_RawPage]) -> list[tuple[DumpPage | None, str | None]]:
    return [_clean_page(raw) for raw in chunk]


def _clean_serially(raw: Iterator[_RawPage]) -> Generator[_Cleaned, None, None]:
    for page in raw:
        yield page, _clean_page(page)


def _clean_in_parallel(raw: Generator[_RawPage, None, None], workers: int,
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
                    pending.append((chunk, pool.submit(_clean_chunk, chunk)))
            if not pending:
                break
            chunk, future = pending.popleft()
            yield from zip(chunk, future.result(), strict=True)
        if fault is not None:
            raise fault
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        raw.close()


def _raw_pages(path: Path, stats: DumpStats,
               skip_through: int | None) -> Generator[_RawPage, None, None]:
    """The article pages of the file, uncleaned; the root is cleared after every page."""
    skipping = skip_through is not None
    handle = _open(path)
    try:
        context = ET.iterparse(handle, events=("start", "end"))
        root: ET.Element | None = None
        ns = ""
        base_url = "https://en.wikipedia.org/wiki/"
        for event, elem in _guarded(context, path, stats):
            if root is None:
                root, ns = elem, _check_root(elem, path)
                continue
            if event != "end":
                continue
            local = elem.tag[len(ns):]
            if local == "base" and elem.text:
                base_url = elem.text.rsplit("/", 1)[0] + "/"
            elif local == "page":
                page = _read_page(elem, ns, stats, base_url)
                root.clear()  # drops this page and keeps memory flat
                if page is None:
                    continue
                if skipping:
                    skipping = page.pageid != skip_through
                    continue
                yield page
        if skipping:
            raise DumpError(f"page id {skip_through} was never reached in {path} "
                            f"({stats.pages_seen} pages read); the progress file belongs to "
                            "another dump: rebuild without --resume")
    finally:
        handle.close()


def _guarded(context: Any, path: Path, stats: DumpStats) -> Iterator[tuple[str, ET.Element]]:
    """iterparse's events, with every way a dump can break turned into a DumpError."""
    try:
        yield from context
    except EOFError as e:
        raise DumpError(f"{path} is truncated ({e}); download the dump again",
                        partial=True) from e
    except ET.ParseError as e:
        if stats.pages_seen == 0:
            raise DumpError(f"{path} is not well-formed XML ({e}); give a MediaWiki "
                            "pages-articles dump") from e
        raise DumpError(f"{path} is truncated or corrupted ({e}); download the dump again",
                        partial=True) from e
    except OSError as e:
        raise DumpError(f"{path} cannot be decompressed ({e}); check the file or download it "
                        "again", partial=True) from e


def _check_root(elem: ET.Element, path: Path) -> str:
    match = _EXPORT_NS.match(elem.tag)
    ns = match.group(0) if match else ("" if elem.tag == "mediawiki" else None)
    if ns is None or elem.tag[len(ns):] != "mediawiki":
        raise DumpError(f"{path} is XML but not a MediaWiki export (its root is {elem.tag!r}, "
                        "expected <mediawiki> in the export-0.NN namespace)")
    return ns


def _read_page(elem: ET.Element, ns: str, stats: DumpStats, base_url: str) -> _RawPage | None:
    stats.pages_seen += 1
    title = elem.findtext(f"{ns}title") or ""
    if (elem.findtext(f"{ns}ns") or "0").strip() != "0":
        stats.other_namespaces += 1
        return None
    if elem.find(f"{ns}redirect") is not None:
        stats.redirects += 1
        return None
    try:
        pageid = int(elem.findtext(f"{ns}id") or "")
    except ValueError:
        stats.parse_failures += 1
        logger.warning("page %r has no numeric id; skipped", title)
        return None
    revision = elem.find(f"{ns}revision")
    wikitext = revid = timestamp = None
    if revision is not None:
        wikitext = revision.findtext(f"{ns}text")
        revid = revision.findtext(f"{ns}id")
        timestamp = revision.findtext(f"{ns}timestamp")
    return _RawPage(title=title, pageid=pageid,
                    revision_id=int(revid) if revid and revid.isdigit() else None,
                    timestamp=timestamp, wikitext=wikitext or "", base_url=base_url)
