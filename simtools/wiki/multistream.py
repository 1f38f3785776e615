"""Multistream dumps: ``pages-articles-multistream.xml.bz2`` read by byte offset.

Wikimedia publishes each dump also as a *multistream* file: many bz2 streams one after the
other (the ``<mediawiki><siteinfo>`` header, then 100 pages per stream, then the closing tag),
with an index ``...-multistream-index.txt.bz2`` whose lines are ``offset:pageid:title``, the
offset being where the page's stream starts. Any stream can be decompressed on its own, so
several workers can read one file at once, each from its own offset: :func:`stream_ranges`
groups the streams into pieces of work, :func:`read_range` decompresses one piece.

:func:`write_multistream` writes one (with its index) from page XML, and
:func:`to_multistream` converts an ordinary dump: for tests, benchmarks, and dumps that came
single-stream.
"""

from __future__ import annotations

import bz2
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, unescape

from .dump_types import DumpError

__all__ = ["StreamRange", "find_index", "read_index", "read_range", "split_pages",
           "stream_ranges", "to_multistream", "write_multistream"]

_PAGE_ID = re.compile(r"<page>.*?<id>\s*(\d+)\s*</id>", re.S)
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)
_CLOSE = b"</mediawiki>"


@dataclass(frozen=True)
class StreamRange:
    """Consecutive streams ``[start, end)`` of the file (``end`` None: to the end of the file)
    and the ids of the pages the index lists in them, in order."""

    start: int
    end: int | None
    pageids: tuple[int, ...]


def find_index(dump: str | os.PathLike[str]) -> Path | None:
    """The index beside a multistream dump (``X-multistream.xml.bz2`` ->
    ``X-multistream-index.txt.bz2``, or ``.txt``), or None for another file."""
    dump = Path(dump)
    name = dump.name
    if not name.endswith("-multistream.xml.bz2"):
        return None
    stem = name[: -len(".xml.bz2")]
    for suffix in ("-index.txt.bz2", "-index.txt"):
        candidate = dump.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def read_index(path: str | os.PathLike[str]) -> list[tuple[int, int, str]]:
    """``(offset, pageid, title)`` for every line of a multistream index (bz2 or plain text)."""
    path = Path(path)
    opener = bz2.open if path.read_bytes()[:3] == b"BZh" else open
    entries = []
    number = 0
    try:
        with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
            for line in handle:
                number += 1
                if not line.strip():
                    continue
                offset, pageid, title = line.rstrip("\n").split(":", 2)
                entries.append((int(offset), int(pageid), title))
    except (ValueError, OSError, EOFError) as e:
        raise DumpError(f"{path} is not a multistream index (offset:pageid:title per line; "
                        f"line {number}: {e}); give the "
                        "-multistream-index.txt.bz2 published with the dump") from e
    if not entries:
        raise DumpError(f"{path} lists no pages; give the -multistream-index.txt.bz2 "
                        "published with the dump")
    offsets = [e[0] for e in entries]
    if offsets != sorted(offsets) or offsets[0] <= 0:
        raise DumpError(f"{path}: its offsets are not increasing from after the header; is it "
                        "the index of this dump?")
    return entries


def stream_ranges(entries: list[tuple[int, int, str]], pages_per_range: int) -> list[StreamRange]:
    """The index's streams grouped into ranges of at least ``pages_per_range`` pages (whole
    streams), in file order; the last runs to the end of the file."""
    streams: list[tuple[int, list[int]]] = []
    for offset, pageid, _ in entries:
        if not streams or streams[-1][0] != offset:
            streams.append((offset, []))
        streams[-1][1].append(pageid)
    ranges: list[StreamRange] = []
    group: list[tuple[int, list[int]]] = []
    for i, stream in enumerate(streams):
        group.append(stream)
        if sum(len(ids) for _, ids in group) >= pages_per_range or i == len(streams) - 1:
            end = streams[i + 1][0] if i + 1 < len(streams) else None
            ranges.append(StreamRange(group[0][0], end,
                                      tuple(p for _, ids in group for p in ids)))
            group = []
    return ranges


def read_range(path: str | os.PathLike[str], start: int, end: int | None) -> tuple[bytes, str | None]:
    """The XML of the streams in ``[start, end)``: ``(data, fault)``. ``fault`` says why the
    range could not be read to its end (``data`` then holds the streams before the fault).
    A closing ``</mediawiki>`` (in the last stream) is left out."""
    with open(path, "rb") as handle:
        handle.seek(start)
        raw = handle.read() if end is None else handle.read(end - start)
    pieces: list[bytes] = []
    fault = None
    while raw:
        decompressor = bz2.BZ2Decompressor()
        try:
            piece = decompressor.decompress(raw)
        except (OSError, EOFError) as e:
            fault = f"cannot be decompressed at byte {start} ({e})"
            break
        if not decompressor.eof:
            fault = "is truncated (a bz2 stream ends early)"
            break
        pieces.append(piece)
        start += len(raw) - len(decompressor.unused_data)
        raw = decompressor.unused_data
    data = b"".join(pieces).rstrip()
    if data.endswith(_CLOSE):
        data = data[: -len(_CLOSE)]
    return data, fault


def read_header(path: str | os.PathLike[str], first_offset: int) -> bytes:
    """The header stream (``<mediawiki ...><siteinfo>...</siteinfo>``) before the first page."""
    data, fault = read_range(path, 0, first_offset)
    if fault is not None or b"<mediawiki" not in data:
        raise DumpError(f"{path} does not start with a bz2 stream holding the <mediawiki> "
                        f"header ({fault or 'no <mediawiki> element'}); is it a multistream "
                        "pages-articles dump?")
    return data


# -- writing -----------------------------------------------------------------------------------
def split_pages(xml: str) -> tuple[str, list[str], str]:
    """An export's text as ``(header, [page XML, ...], footer)``."""
    first = xml.find("<page>")
    if first < 0:
        raise DumpError("the dump holds no <page> element")
    header, pages, at = xml[:first], [], first
    while True:
        stop = xml.find("</page>", at)
        if stop < 0:
            break
        pages.append(xml[at:stop + len("</page>")])
        at = xml.find("<page>", stop)
        if at < 0:
            at = stop + len("</page>")
            break
    return header.rstrip() + "\n", pages, xml[at:]


def _identity(page: str) -> tuple[int, str]:
    found_id, found_title = _PAGE_ID.search(page), _TITLE.search(page)
    if found_id is None or found_title is None:
        raise DumpError(f"a page has no <id> or <title>: {page[:80]!r}")
    return int(found_id.group(1)), unescape(found_title.group(1))


def write_multistream(header: str, pages: Iterable[str], out: str | os.PathLike[str],
                      index: str | os.PathLike[str], *, pages_per_stream: int = 100,
                      footer: str = "</mediawiki>\n") -> int:
    """Write ``pages`` (page XML) as a multistream dump ``out`` with its index; returns the
    number of pages. The index is bz2-compressed when its name ends in ``.bz2``."""
    lines: list[str] = []
    count = 0
    with open(out, "wb") as handle:
        handle.write(bz2.compress(header.encode("utf-8")))
        for group in _groups(pages, pages_per_stream):
            offset = handle.tell()
            for page in group:
                pageid, title = _identity(page)
                lines.append(f"{offset}:{pageid}:{title}\n")
            handle.write(bz2.compress("".join(group).encode("utf-8")))
            count += len(group)
        handle.write(bz2.compress(footer.encode("utf-8")))
    text = "".join(lines).encode("utf-8")
    Path(index).write_bytes(bz2.compress(text) if str(index).endswith(".bz2") else text)
    return count


def _groups(pages: Iterable[str], size: int) -> Iterator[list[str]]:
    group: list[str] = []
    for page in pages:
        group.append(page)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def to_multistream(dump: str | os.PathLike[str], out: str | os.PathLike[str], *,
                   pages_per_stream: int = 100) -> Path:
    """Convert an ordinary dump into ``out`` (a name ending ``-multistream.xml.bz2``) and its
    index beside it; returns the index's path. Reads the whole dump into memory: for tests,
    benchmarks and small dumps."""
    out = Path(out)
    if not out.name.endswith("-multistream.xml.bz2"):
        raise ValueError(f"{out.name} must end in -multistream.xml.bz2 (the index is found by "
                         "that name)")
    with bz2.open(dump, "rt", encoding="utf-8") as handle:
        header, pages, footer = split_pages(handle.read())
    index = out.with_name(out.name[: -len(".xml.bz2")] + "-index.txt.bz2")
    write_multistream(header, pages, out, index, pages_per_stream=pages_per_stream,
                      footer=footer)
    return index


def page_xml_with_id(page: str, pageid: int, title: str) -> str:
    """``page`` with its page id and title replaced (the first ``<id>`` is the page's)."""
    page = _TITLE.sub(lambda _: f"<title>{escape(title)}</title>", page, count=1)
    return re.sub(r"<id>\s*\d+\s*</id>", f"<id>{pageid}</id>", page, count=1)
