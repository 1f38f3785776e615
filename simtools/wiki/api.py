"""Fetch Wikipedia pages online with the ``wikipedia`` package, safely: timeouts, retries, cache.

The ``wikipedia`` package (1.4.0) sends every API call through one private function,
``wikipedia.wikipedia._wiki_request(params)``, which calls ``requests.get`` with no timeout, a
plain-http address and no error handling. Rather than patch ``requests`` for the whole process
or copy the package's page logic, :class:`WikipediaFetcher` swaps that one function for
:meth:`ApiClient.request` while it fetches (and puts the original back afterwards). The package
still builds every query and interprets every answer (redirects, missing pages, disambiguation
pages); our client only carries them: a ``requests.Session`` with a descriptive User-Agent, a
deadline on every call (the whole answer, not each read: see ``_deadline``), a polite minimum
interval between calls, retries with exponential backoff on 429 (honouring ``Retry-After``),
5xx and connection errors, and an overall time budget that no retry or wait may overrun.

Why not the package's own knobs: ``wikipedia.API_URL`` is a copy that nothing reads (the real
address is ``wikipedia.wikipedia.API_URL``, which ``set_lang`` overwrites), and
``set_rate_limiting`` sleeps ``int(seconds)``, i.e. not at all for sub-second intervals.

Pages are cached as one JSON file each under ``<cache>/<api host>/``, so re-indexing works
offline; ``refresh=True`` fetches again. The package's in-process memo (``search``,
``summary``) is never used: titles are fetched exactly (``auto_suggest=False``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..persistence import atomic_write
from .client import (
    API_URL_ENV,
    DEFAULT_API_URL,
    ApiClient,
    ApiUnreachableError,
    BadResponseError,
    BudgetExhaustedError,
    DisambiguationPageError,
    MissingPageError,
    WikipediaError,
    _check_title,
    _wikipedia_through,
    default_cache_dir,
    resolve_api_url,
)

__all__ = [
    "API_URL_ENV",
    "DEFAULT_API_URL",
    "ApiClient",
    "ApiUnreachableError",
    "BadResponseError",
    "BudgetExhaustedError",
    "DisambiguationPageError",
    "FetchReport",
    "FetchedPage",
    "MissingPageError",
    "PageCache",
    "WikipediaError",
    "WikipediaFetcher",
    "default_cache_dir",
    "resolve_api_url",
]

logger = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1


# -- pages and the cache ------------------------------------------------------------------------
@dataclass(frozen=True)
class FetchedPage:
    """One page's plain text and where it came from."""

    title: str
    text: str
    pageid: int
    revision_id: int | None
    url: str
    fetched_at: str
    requested_title: str
    api_url: str
    from_cache: bool = field(default=False, compare=False)

    def metadata(self) -> dict[str, Any]:
        """What an index stores beside the vector."""
        return {"source": "wikipedia", "title": self.title, "pageid": self.pageid,
                "revision_id": self.revision_id, "url": self.url, "fetched_at": self.fetched_at,
                "requested_title": self.requested_title}

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("from_cache")
        return {"format_version": CACHE_FORMAT_VERSION, **record}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> FetchedPage:
        if record.get("format_version") != CACHE_FORMAT_VERSION:
            raise ValueError(f"cache format {record.get('format_version')!r}, "
                             f"expected {CACHE_FORMAT_VERSION}")
        return cls(
            title=str(record["title"]), text=str(record["text"]), pageid=int(record["pageid"]),
            revision_id=None if record["revision_id"] is None else int(record["revision_id"]),
            url=str(record["url"]), fetched_at=str(record["fetched_at"]),
            requested_title=str(record["requested_title"]), api_url=str(record["api_url"]),
            from_cache=True,
        )


class PageCache:
    """One JSON file per requested title, under a folder per API host."""

    def __init__(self, folder: str | os.PathLike[str], api_url: str) -> None:
        host = urlsplit(api_url).netloc or "local"
        self.folder = Path(folder).expanduser() / re.sub(r"[^A-Za-z0-9._-]", "_", host)

    def path_for(self, title: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", title)[:80]
        digest = hashlib.sha256(title.encode("utf-8")).hexdigest()[:12]
        return self.folder / f"{slug}-{digest}.json"

    def get(self, title: str) -> FetchedPage | None:
        """The cached page, or ``None`` when absent or unreadable (then it is fetched again)."""
        path = self.path_for(title)
        try:
            with open(path, encoding="utf-8") as handle:
                return FetchedPage.from_json(json.load(handle))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            logger.warning("ignoring unreadable cache file %s (%s)", path, e)
            return None

    def put(self, page: FetchedPage) -> Path:
        """Write atomically (temporary file + ``os.replace``) so a crash never leaves half a file."""
        path = self.path_for(page.requested_title)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(page.to_json(), ensure_ascii=False).encode("utf-8")
        atomic_write(path, lambda handle: handle.write(data))
        return path


# -- fetching -----------------------------------------------------------------------------------
@dataclass
class FetchReport:
    """What :meth:`WikipediaFetcher.fetch_many` got: pages in title order, and the failures."""

    pages: list[FetchedPage] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)
    #: The API could not be reached (the pages came from the cache, or failed).
    unreachable: bool = False

    @property
    def from_cache(self) -> int:
        return sum(page.from_cache for page in self.pages)


class WikipediaFetcher:
    """Fetch exact titles (redirects followed), through the cache unless ``refresh``."""

    def __init__(
        self,
        *,
        api_url: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        use_cache: bool = True,
        refresh: bool = False,
        client: ApiClient | None = None,
        **client_options: Any,
    ) -> None:
        self.client = client if client is not None else ApiClient(api_url, **client_options)
        self.api_url = self.client.api_url
        self.cache = (PageCache(cache_dir if cache_dir is not None else default_cache_dir(),
                                self.api_url) if use_cache else None)
        self.refresh = refresh

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> WikipediaFetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cached(self, title: str) -> FetchedPage | None:
        """The cached copy of ``title`` (ignoring ``refresh``), or ``None``."""
        return self.cache.get(_check_title(title)) if self.cache is not None else None

    def fetch(self, title: str) -> FetchedPage:
        """The page for exactly ``title``; raises a :class:`WikipediaError` subclass on failure."""
        title = _check_title(title)
        if self.cache is not None and not self.refresh:
            page = self.cache.get(title)
            if page is not None:
                logger.debug("%r served from the cache", title)
                return page
        page = self._download(title)
        if self.cache is not None:
            self.cache.put(page)
        return page

    def _download(self, title: str) -> FetchedPage:
        with _wikipedia_through(self.client) as wiki, warnings.catch_warnings():
            # The package parses disambiguation HTML with BeautifulSoup without naming a parser.
            warnings.simplefilter("ignore")
            exceptions = wiki.DisambiguationError, wiki.PageError, wiki.WikipediaException
            try:
                page = wiki.page(title, auto_suggest=False, redirect=True)
                text = page.content
                revision_id = page.revision_id
                resolved, pageid, url = page.title, page.pageid, page.url
            except exceptions[0] as e:
                options = [str(option) for option in e.options]
                shown = ", ".join(options[:10]) + (f" and {len(options) - 10} more"
                                                   if len(options) > 10 else "")
                raise DisambiguationPageError(
                    f"{title!r} is a disambiguation page; pick one of: {shown or '(no options)'}",
                    title=title, options=options) from None
            except exceptions[1]:
                raise MissingPageError(
                    f"no page titled {title!r} at {self.api_url}; check the exact title "
                    "(titles are case-sensitive after the first letter)", title=title) from None
            except exceptions[2] as e:
                raise BadResponseError(f"fetching {title!r} failed: {e}", title=title) from e
            except (KeyError, IndexError, TypeError, AttributeError, AssertionError) as e:
                raise BadResponseError(
                    f"{self.api_url} gave an answer of an unexpected shape for {title!r} "
                    f"({type(e).__name__}: {e}); check that api_url points at a MediaWiki "
                    "api.php", title=title) from e
        if not isinstance(text, str) or not text.strip():
            raise BadResponseError(f"page {resolved!r} has no plain text to index", title=title)
        if resolved != title:
            logger.info("%r redirects to %r", title, resolved)
        return FetchedPage(
            title=str(resolved), text=text, pageid=int(pageid),
            revision_id=None if revision_id is None else int(revision_id), url=str(url),
            fetched_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            requested_title=title, api_url=self.api_url,
        )

    def fetch_many(self, titles: Iterable[str], *,
                   on_done: Callable[[str], None] | None = None) -> FetchReport:
        """Fetch each title; one failure never loses the others.

        Once the API proves unreachable, the remaining titles are served from the cache only
        (no more waiting on timeouts). ``on_done(title)`` is called after each title.
        """
        report = FetchReport()
        seen: dict[int, str] = {}
        unreachable: ApiUnreachableError | None = None
        for raw in titles:
            label = raw if isinstance(raw, str) else repr(raw)
            page: FetchedPage | None = None
            try:
                if unreachable is None:
                    page = self.fetch(raw)
                else:
                    page = self.cached(raw)
                    if page is None:
                        raise unreachable
            except ApiUnreachableError as e:
                unreachable = e
                report.unreachable = True
                # With --refresh a stale copy still beats nothing when the API is gone.
                page = self.cached(raw)
                if page is None:
                    report.failures[label] = str(e)
                else:
                    logger.warning("%s; using the cached copy of %r", e, label)
            except (WikipediaError, ValueError, TypeError) as e:
                report.failures[label] = str(e)
            if page is not None:
                if page.pageid in seen:
                    report.duplicates[label] = seen[page.pageid]
                else:
                    seen[page.pageid] = label
                    report.pages.append(page)
            if on_done is not None:
                on_done(label)
        return report
