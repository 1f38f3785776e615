"""What a dump read yields and counts: :class:`DumpPage`, :class:`DumpStats`, :class:`DumpError`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ..errors import InputError

__all__ = ["DumpError", "DumpPage", "DumpStats"]


class DumpError(InputError):
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
    """Counts kept while streaming (updated in place, readable at any time).

    ``too_large``, ``too_nested`` and ``parse_failures`` name their pages in ``skipped_titles``.
    """

    pages_seen: int = 0
    articles: int = 0
    redirects: int = 0
    other_namespaces: int = 0
    empty: int = 0
    parse_failures: int = 0
    #: More wikitext than ``max_page_bytes``.
    too_large: int = 0
    #: More tags open at once than ``max_nesting``.
    too_nested: int = 0
    #: A page id met before (the first page with it is kept).
    duplicates: int = 0
    skipped_titles: list[str] = field(default_factory=list)


# -- streaming --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RawPage:
    title: str
    pageid: int
    revision_id: int | None
    timestamp: str | None
    wikitext: str
    base_url: str


