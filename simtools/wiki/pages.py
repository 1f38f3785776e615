"""Wikipedia pages, fetched or read from a dump, as the documents the index builder takes."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any, Protocol

from .._validation import check_choice
from ..data import Document

__all__ = ["LabelFrom", "PageLike", "page_document", "page_documents"]


class LabelFrom(str, Enum):
    """Where a page's label comes from."""

    NONE = "none"
    CATEGORY = "category"  # the page's first [[Category:...]]
    TITLE = "title"  # the page title (nearest-page classification)


class PageLike(Protocol):
    """What a page must have to become a document (``FetchedPage`` and ``DumpPage`` both fit)."""

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


def page_document(page: PageLike, label_from: LabelFrom) -> Document:
    """A fetched or dump page as the document the index builder takes (id: its page id)."""
    metadata = dict(page.metadata())
    source = str(metadata.pop("source", "wikipedia"))
    return Document(page.text, page.title, _label(page, label_from), source, metadata,
                    id=str(page.pageid))


def page_documents(pages: Iterable[PageLike], *,
                   label_from: str | LabelFrom = "title") -> list[Document]:
    """Fetched or dump pages as documents for :func:`simtools.index.build.build_index` (ids are
    page ids; labels from ``label_from``: "title", "category" or "none")."""
    label_kind = check_choice(label_from, LabelFrom, name="label source")
    return [page_document(page, label_kind) for page in pages]
