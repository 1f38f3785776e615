"""The transport under the Wikipedia fetcher: errors, the API address, and :class:`ApiClient`
(a ``requests.Session`` with a deadline on every call, a polite interval, retries with
backoff, and an overall budget). See :mod:`simtools.wiki.api` for why it exists.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._version import __version__
from ..errors import SimtoolsError

__all__ = ["API_URL_ENV", "ApiClient", "ApiUnreachableError", "BadResponseError",
           "BudgetExhaustedError", "CACHE_DIR_ENV", "DEFAULT_API_URL", "DEFAULT_USER_AGENT",
           "DisambiguationPageError", "MissingPageError", "WikipediaError", "default_cache_dir",
           "resolve_api_url"]

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://en.wikipedia.org/w/api.php"
API_URL_ENV = "SIMTOOLS_WIKIPEDIA_API_URL"
CACHE_DIR_ENV = "SIMTOOLS_CACHE_DIR"
DEFAULT_USER_AGENT = (
    f"simtools/{__version__} (Wikipedia indexing for similarity search; "
    "https://github.com/simtools/simtools) python-requests"
)

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
