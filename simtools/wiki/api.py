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

import contextlib
import email.utils
import hashlib
import json
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._version import __version__
from ..errors import SimtoolsError
from ..persistence import atomic_write

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

DEFAULT_API_URL = "https://en.wikipedia.org/w/api.php"
API_URL_ENV = "SIMTOOLS_WIKIPEDIA_API_URL"
CACHE_DIR_ENV = "SIMTOOLS_CACHE_DIR"
DEFAULT_USER_AGENT = (
    f"simtools/{__version__} (Wikipedia indexing for similarity search; "
    "https://github.com/simtools/simtools) python-requests"
)
CACHE_FORMAT_VERSION = 1

# Characters MediaWiki never allows in a title: sending them only earns an "invalid" answer.
_ILLEGAL_TITLE_CHARS = re.compile(r"[#<>\[\]{}|]")
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


# -- errors -----------------------------------------------------------------------------------
class WikipediaError(SimtoolsError, ValueError):
    """A page could not be fetched; the message says which title and why."""

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.title = title


class MissingPageError(WikipediaError):
    """The wiki has no page with that exact title."""


class DisambiguationPageError(WikipediaError):
    """The title names a disambiguation page; ``options`` lists the pages it points to."""

    def __init__(self, message: str, *, title: str, options: list[str]) -> None:
        super().__init__(message, title=title)
        self.options = options


class ApiUnreachableError(WikipediaError):
    """No answer at all (connection refused, DNS failure, timeout), even after retries."""


class BudgetExhaustedError(ApiUnreachableError):
    """The client's overall time budget is spent (or too little is left for the next retry)."""


class BadResponseError(WikipediaError):
    """The API answered, but not usefully: HTTP errors, non-JSON, an API error, odd JSON."""


# -- configuration ------------------------------------------------------------------------------
def resolve_api_url(api_url: str | None = None) -> str:
    """The API address: ``api_url`` if given, else ``$SIMTOOLS_WIKIPEDIA_API_URL``, else English
    Wikipedia over https. Raises ``ValueError`` for anything that is not an http(s) URL."""
    url = api_url or os.environ.get(API_URL_ENV) or DEFAULT_API_URL
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"API address {url!r} is not an http(s) URL; expected something like "
            f"{DEFAULT_API_URL} (set api_url or ${API_URL_ENV})"
        )
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
        logger.warning("API address %s uses plain http; prefer https", url)
    return url


def default_cache_dir() -> Path:
    """``$SIMTOOLS_CACHE_DIR/wikipedia``, else ``~/.cache/simtools/wikipedia``."""
    base = os.environ.get(CACHE_DIR_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "simtools"
    return root / "wikipedia"


def _check_title(title: Any) -> str:
    if not isinstance(title, str):
        raise TypeError(f"a page title must be a str, got {type(title).__name__}")
    clean = " ".join(title.replace("_", " ").split())
    if not clean:
        raise ValueError("empty page title; give the exact title, e.g. \"Machine learning\"")
    bad = _ILLEGAL_TITLE_CHARS.search(clean)
    if bad:
        raise ValueError(
            f"page title {title!r} contains {bad.group()!r}, which no Wikipedia title can "
            "contain; give the page title only (no section '#', no link brackets)"
        )
    return clean


# -- the transport ------------------------------------------------------------------------------
class ApiClient:
    """Sends MediaWiki API queries: a deadline per request, polite pacing, retries with
    exponential backoff, and an overall time budget.

    ``timeout`` is the deadline of one request: connecting, waiting and reading the whole
    answer, not each socket read (a server dripping one byte a second is cut off there too).
    ``budget`` bounds all the time the client spends, counted from its first request: requests,
    retries and the waits between them; a retry that would not fit is not made, and once the
    budget is spent every request fails at once with :class:`BudgetExhaustedError` (``None``:
    no overall limit). ``max_wait`` caps one wait between retries, ``Retry-After`` included.

    ``request(params)`` has the signature of ``wikipedia.wikipedia._wiki_request`` so that it can
    stand in for it. ``sleep`` and ``clock`` are injectable so tests never wait for real. A given
    ``session`` gets the deadline adapter mounted for http and https.
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_wait: float = 30.0,
        budget: float | None = 600.0,
        min_interval: float = 0.1,
        session: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            import requests

            from ._deadline import DeadlineAdapter
        except ImportError as e:
            raise ImportError("online fetching needs requests and wikipedia: "
                              "pip install 'simtools[wiki]'") from e

        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries!r}")
        if not max_wait >= 0:
            raise ValueError(f"max_wait must be >= 0 seconds, got {max_wait!r}")
        if budget is not None and not budget > 0:
            raise ValueError(f"budget must be > 0 seconds or None (no overall limit), "
                             f"got {budget!r}")
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0 seconds, got {min_interval!r}")
        self.api_url = resolve_api_url(api_url)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_wait = float(max_wait)
        self.budget = None if budget is None else float(budget)
        self.min_interval = float(min_interval)
        self._requests = requests
        self.session = session if session is not None else requests.Session()
        adapter = DeadlineAdapter()
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = user_agent
        self._sleep = sleep
        self._clock = clock
        self._last_call: float | None = None
        self._started: float | None = None
        self.calls = 0
        #: True once a request was refused for want of budget.
        self.budget_exhausted = False

    def close(self) -> None:
        self.session.close()

    def _pace(self) -> None:
        if self._last_call is not None and self.min_interval > 0:
            wait = self._last_call + self.min_interval - self._clock()
            if wait > 0:
                self._sleep(wait)
        self._last_call = self._clock()

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff * 2**attempt
        if retry_after:
            asked = _parse_retry_after(retry_after)
            if asked is not None:
                delay = asked
        return min(max(delay, 0.0), self.max_wait)

    def _left(self) -> float | None:
        """Seconds left in the budget (``None``: no budget); the clock starts at the first call."""
        if self.budget is None:
            return None
        if self._started is None:
            self._started = self._clock()
        return self.budget - (self._clock() - self._started)

    def _window(self) -> float:
        """The deadline of the next request: ``timeout``, or what is left of the budget."""
        left = self._left()
        if left is not None and left <= 0:
            self.budget_exhausted = True
            raise BudgetExhaustedError(f"gave up on {self.api_url}: the time budget of "
                                       f"{self.budget:g} s is spent")
        return self.timeout if left is None else min(self.timeout, left)

    def _retry_after(self, delay: float, problem: str, attempt: int) -> None:
        """Wait ``delay`` before the next attempt, unless the budget cannot cover it."""
        left = self._left()
        if left is not None and delay >= left:
            self.budget_exhausted = True
            raise BudgetExhaustedError(f"{problem} ({attempt + 1} attempt(s)); no time left in "
                                       f"the {self.budget:g} s budget for another")
        logger.info("%s; retrying in %.1f s", problem, delay)
        self._sleep(delay)

    def request(self, params: dict[str, Any]) -> dict[str, Any]:
        """Send one query (``format=json``, ``action=query`` unless given); return its JSON."""
        from ._deadline import get_within

        params = dict(params, format="json")
        params.setdefault("action", "query")
        requests = self._requests
        transient = (requests.ConnectionError, requests.Timeout,
                     requests.exceptions.ChunkedEncodingError)
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            self._pace()
            window = self._window()
            self.calls += 1
            try:
                response = get_within(self.session, self.api_url, params=params, seconds=window)
            except transient as e:
                if last:
                    raise ApiUnreachableError(
                        f"cannot reach {self.api_url} ({_short_reason(e)}) after {attempts} "
                        "attempt(s)") from e
                self._retry_after(self._delay(attempt, None),
                                  f"cannot reach {self.api_url} ({_short_reason(e)})", attempt)
                continue
            except requests.RequestException as e:
                raise BadResponseError(f"request to {self.api_url} failed: {_short_reason(e)}; "
                                       "check api_url") from e
            status = response.status_code
            if status == 429 or 500 <= status < 600:
                answered = f"{self.api_url} answered HTTP {status} {response.reason or ''}".rstrip()
                if last:
                    raise BadResponseError(f"{answered} to all {attempts} attempt(s); "
                                           "try again later")
                response.close()
                self._retry_after(self._delay(attempt, response.headers.get("Retry-After")),
                                  answered, attempt)
                continue
            if status >= 400:
                raise BadResponseError(f"{self.api_url} answered HTTP {status} "
                                       f"{response.reason or ''}; check api_url")
            data = _decode_json(response, self.api_url)
            error = data.get("error")
            if isinstance(error, dict):
                code = str(error.get("code", "?"))
                if code in ("maxlag", "ratelimited") and not last:
                    self._retry_after(self._delay(attempt, response.headers.get("Retry-After")),
                                      f"{self.api_url} refused the query: {code}", attempt)
                    continue
                raise BadResponseError(f"{self.api_url} refused the query: {code}: "
                                       f"{error.get('info', '')}")
            return data
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises


def _decode_json(response: Any, url: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as e:
        kind = response.headers.get("Content-Type", "unknown type")
        start = response.text[:60].strip()
        raise BadResponseError(
            f"{url} did not answer JSON ({kind}, starting {start!r}); check that api_url "
            "points at a MediaWiki api.php"
        ) from e
    if not isinstance(data, dict):
        raise BadResponseError(f"{url} answered JSON that is not an object "
                               f"({type(data).__name__}); check api_url")
    return data


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _short_reason(error: BaseException) -> str:
    import requests

    from ._deadline import DeadlineExceeded

    if isinstance(error, DeadlineExceeded):
        return f"timed out: {error}"
    if isinstance(error, requests.Timeout):
        return "timed out"
    text = str(error)
    for marker in ("Name or service not known", "Temporary failure in name resolution",
                   "Connection refused", "Network is unreachable", "No route to host"):
        if marker in text:
            return marker.lower()
    return type(error).__name__


_TRANSPORT_LOCK = threading.RLock()


@contextlib.contextmanager
def _wikipedia_through(client: ApiClient) -> Iterator[Any]:
    """Route the ``wikipedia`` package's API calls through ``client`` for the ``with`` block."""
    try:
        import wikipedia.wikipedia as wiki_module
    except ImportError as e:
        raise ImportError("online indexing needs the wikipedia package: "
                          "pip install 'simtools[wiki]'") from e
    with _TRANSPORT_LOCK:
        saved = (wiki_module._wiki_request, wiki_module.API_URL, wiki_module.USER_AGENT)
        wiki_module._wiki_request = client.request
        # Not read by our transport; set so that anything inspecting them sees the truth.
        wiki_module.API_URL = client.api_url
        wiki_module.USER_AGENT = client.session.headers["User-Agent"]
        try:
            yield wiki_module
        finally:
            wiki_module._wiki_request, wiki_module.API_URL, wiki_module.USER_AGENT = saved


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
