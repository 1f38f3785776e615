"""The streaming reader of a MediaWiki XML export: expat handlers that keep one page's fields."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any
from xml.parsers import expat

from .dump_types import DumpError, DumpStats, _RawPage

__all__: list[str] = []

logger = logging.getLogger("simtools.wiki.dump")

_READ_SIZE = 1 << 16
# Titles, ids and timestamps are short (a MediaWiki title is at most 255 bytes); past this
# many characters the rest of such a field is ignored.
_MAX_FIELD_CHARS = 4096
_EXPORT_URI = re.compile(r"^http://www\.mediawiki\.org/xml/export-[0-9.]+/$")


_FIELDS = {
    ("siteinfo", "base"): "base",
    ("page", "title"): "title",
    ("page", "ns"): "ns",
    ("page", "id"): "id",
    ("page", "revision", "id"): "revid",
    ("page", "revision", "timestamp"): "timestamp",
    ("page", "revision", "text"): "text",
}
_REVISION_FIELDS = frozenset({"revid", "timestamp", "text"})


class _PageReader:
    """Expat handlers that turn a dump into :class:`_RawPage` records, one page held at a time.

    Only the fields above are kept, each short one up to ``_MAX_FIELD_CHARS``; the wikitext is
    kept only for a page that can be an article (namespace 0, not a redirect, not being skipped),
    and only up to ``max_page_bytes``: past that it is dropped as it arrives and the page is
    counted as too large, so no page, however large, is ever held in memory.
    """

    def __init__(self, path: Path, stats: DumpStats, skip_through: int | None,
                 max_page_bytes: int | None) -> None:
        self.path = path
        self.stats = stats
        self.skip_through = skip_through
        self.skipping = skip_through is not None
        self.max_page_bytes = max_page_bytes
        self.base_url = "https://en.wikipedia.org/wiki/"
        self.seen = _SeenIds()
        self.ready: list[_RawPage] = []
        self._parser = expat.ParserCreate(namespace_separator=" ")
        self._parser.buffer_text = True
        self._parser.buffer_size = _READ_SIZE
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._data
        self._open: list[str] = []  # local names of the open elements, the root first
        self._page: dict[str, Any] | None = None
        self._field: str | None = None
        self._field_at: tuple[str, ...] = ()
        self._chunks: list[str] = []
        self._size = 0

    def feed(self, data: bytes) -> None:
        """Parse the next piece of the file; ``b""`` marks its end."""
        self._parser.Parse(data, not data)

    def take(self) -> list[_RawPage]:
        pages, self.ready = self.ready, []
        return pages

    def _start(self, name: str, attributes: dict[str, str]) -> None:
        if not self._open:
            _check_root(name, self.path)
        self._open.append(name.rpartition(" ")[2])
        where = tuple(self._open[1:])
        if where == ("page",):
            self._page = {"redirect": False, "revisions": 0, "too_large": False}
            return
        page = self._page
        if page is not None:
            if where == ("page", "redirect"):
                page["redirect"] = True
            elif where == ("page", "revision"):
                page["revisions"] += 1
        kept = _FIELDS.get(where)
        if kept is None or self._field is not None or (page is None) != (kept == "base"):
            return
        if page is not None and kept in _REVISION_FIELDS and page["revisions"] > 1:
            return  # only the first revision counts
        if kept == "text" and not self._wants_text(page):
            return
        self._field, self._field_at, self._chunks, self._size = kept, where, [], 0

    def _wants_text(self, page: Any) -> bool:
        return ((page.get("ns") or "0").strip() == "0" and not page["redirect"]
                and not self.skipping)

    def _data(self, data: str) -> None:
        if self._field is None:
            return
        if self._field == "text":
            if self._page is not None and self._page["too_large"]:
                return
            self._size += len(data) if data.isascii() else len(data.encode("utf-8"))
            if self.max_page_bytes is not None and self._size > self.max_page_bytes:
                assert self._page is not None
                self._page["too_large"] = True
                self._chunks = []
                return
        else:
            room = _MAX_FIELD_CHARS - self._size
            if room <= 0:
                return
            data = data[:room]
            self._size += len(data)
        self._chunks.append(data)

    def _end(self, name: str) -> None:
        where = tuple(self._open[1:])
        self._open.pop()
        if self._field is not None and where == self._field_at:
            value = "".join(self._chunks)
            if self._field == "base":
                if value:
                    self.base_url = value.rsplit("/", 1)[0] + "/"
            elif self._page is not None:
                self._page[self._field] = value
            self._field, self._chunks = None, []
        elif where == ("page",) and self._page is not None:
            page, self._page = self._page, None
            self._finish(page)

    def _finish(self, page: dict[str, Any]) -> None:
        stats = self.stats
        stats.pages_seen += 1
        title = page.get("title", "")
        if (page.get("ns") or "0").strip() != "0":
            stats.other_namespaces += 1
            return
        if page["redirect"]:
            stats.redirects += 1
            return
        try:
            pageid = int(page.get("id") or "")
        except ValueError:
            stats.parse_failures += 1
            logger.warning("page %r has no numeric id; skipped", title)
            return
        if not self.seen.add(pageid):
            stats.duplicates += 1
            logger.warning("page id %d appears again (%r); the first page with it is kept",
                           pageid, title)
            return
        if self.skipping:
            self.skipping = pageid != self.skip_through
            return
        if page["too_large"]:
            stats.too_large += 1
            stats.skipped_titles.append(title)
            logger.warning("%r has more than %d bytes of wikitext; skipped (raise "
                           "max_page_bytes to keep it)", title, self.max_page_bytes)
            return
        revid = page.get("revid")
        self.ready.append(_RawPage(
            title=title, pageid=pageid,
            revision_id=int(revid) if revid and revid.isdigit() else None,
            timestamp=page.get("timestamp"), wikitext=page.get("text", ""),
            base_url=self.base_url))


class _SeenIds:
    """Page ids met so far: a bit each below 2**27 (16 MiB at most for every id Wikipedia has
    used so far), a set for the others."""

    _BITMAP_IDS = 1 << 27

    def __init__(self) -> None:
        self._bits = bytearray()
        self._others: set[int] = set()

    def add(self, pageid: int) -> bool:
        """Record ``pageid``; ``False`` when it was met before."""
        if not 0 <= pageid < self._BITMAP_IDS:
            if pageid in self._others:
                return False
            self._others.add(pageid)
            return True
        byte, mask = pageid >> 3, 1 << (pageid & 7)
        if byte >= len(self._bits):
            size = min(max(byte + 1, 2 * len(self._bits)), self._BITMAP_IDS >> 3)
            self._bits.extend(bytes(size - len(self._bits)))
        if self._bits[byte] & mask:
            return False
        self._bits[byte] |= mask
        return True


def _check_root(name: str, path: Path) -> None:
    uri, _, local = name.rpartition(" ")
    if local != "mediawiki" or (uri and not _EXPORT_URI.match(uri)):
        shown = f"{{{uri}}}{local}" if uri else local
        raise DumpError(f"{path} is XML but not a MediaWiki export (its root is {shown!r}, "
                        "expected <mediawiki> in the export-0.NN namespace)")
