"""Online fetching against a local fake MediaWiki API: exact titles, errors, retries, cache."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("wikipedia")
pytest.importorskip("requests")

import wikipedia.wikipedia as wiki_module  # noqa: E402

from simtools.wiki.api import (  # noqa: E402
    API_URL_ENV,
    DEFAULT_API_URL,
    ApiClient,
    ApiUnreachableError,
    BadResponseError,
    BudgetExhaustedError,
    DisambiguationPageError,
    MissingPageError,
    WikipediaFetcher,
    default_cache_dir,
    resolve_api_url,
)
from simtools.wiki.build import build_index  # noqa: E402
from simtools.wiki.client import _parse_retry_after  # noqa: E402
from tests.fakewiki import FOUR_PAGES, FakeWiki  # noqa: E402


@pytest.fixture
def fake():
    with FakeWiki(redirects={"Soccer": "Association football"},
                  disambiguation={"Mercury": ["Mercury (planet)", "Mercury (element)"]}) as wiki:
        yield wiki


class Sleeps(list):
    """Records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_fetcher(api_url: str, cache: Path, **options) -> WikipediaFetcher:
    options.setdefault("min_interval", 0)
    options.setdefault("sleep", Sleeps())
    return WikipediaFetcher(api_url=api_url, cache_dir=cache, **options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- fetching exact titles ----------------------------------------------------------------------
def test_fetch_exact_title_records_text_ids_and_url(fake, tmp_path):
    page = make_fetcher(fake.api_url, tmp_path).fetch("Machine learning")
    assert page.title == "Machine learning"
    assert page.text == FOUR_PAGES["Machine learning"]
    assert page.pageid == fake.pageid("Machine learning")
    assert page.revision_id == 50000 + page.pageid
    assert page.url == "https://fake.wiki/wiki/Machine_learning"
    assert page.fetched_at.endswith("+00:00")
    assert not page.from_cache


def test_no_search_query_is_ever_sent(fake, tmp_path):
    make_fetcher(fake.api_url, tmp_path).fetch("Tennis")
    assert fake.requests, "the fake server saw no request"
    assert not [q for q in fake.requests if "list" in q or "srsearch" in q]  # auto_suggest=False
    assert all(q["format"] == "json" for q in fake.requests)


def test_descriptive_user_agent_is_sent(fake, tmp_path):
    make_fetcher(fake.api_url, tmp_path).fetch("Tennis")
    assert fake.user_agents[0].startswith("simtools/")
    make_fetcher(fake.api_url, tmp_path / "other", user_agent="mybot/1.0 (me@example.org)").fetch(
        "Tennis")
    assert fake.user_agents[-1] == "mybot/1.0 (me@example.org)"


def test_redirect_is_followed_and_requested_title_kept(fake, tmp_path):
    page = make_fetcher(fake.api_url, tmp_path).fetch("Soccer")
    assert page.title == "Association football"
    assert page.requested_title == "Soccer"
    assert page.metadata()["requested_title"] == "Soccer"


def test_first_letter_is_normalised_by_the_wiki(fake, tmp_path):
    assert make_fetcher(fake.api_url, tmp_path).fetch("tennis").title == "Tennis"


def test_missing_page_names_the_title(fake, tmp_path):
    with pytest.raises(MissingPageError, match="no page titled 'Nope'") as info:
        make_fetcher(fake.api_url, tmp_path).fetch("Nope")
    assert info.value.title == "Nope"


def test_disambiguation_page_lists_its_options(fake, tmp_path):
    with pytest.raises(DisambiguationPageError, match=r"Mercury \(planet\), Mercury \(element\)"
                       ) as info:
        make_fetcher(fake.api_url, tmp_path).fetch("Mercury")
    assert info.value.options == ["Mercury (planet)", "Mercury (element)"]


@pytest.mark.parametrize("title", ["", "   ", "_"])
def test_empty_title_is_a_clear_error(fake, tmp_path, title):
    with pytest.raises(ValueError, match="empty page title"):
        make_fetcher(fake.api_url, tmp_path).fetch(title)
    assert fake.requests == []


def test_title_with_illegal_characters_is_rejected_before_any_request(fake, tmp_path):
    with pytest.raises(ValueError, match="no Wikipedia title can contain"):
        make_fetcher(fake.api_url, tmp_path).fetch("Tennis#History")
    assert fake.requests == []


def test_title_must_be_a_string(fake, tmp_path):
    with pytest.raises(TypeError, match="must be a str"):
        make_fetcher(fake.api_url, tmp_path).fetch(42)  # type: ignore[arg-type]


def test_package_transport_is_restored_after_fetching(fake, tmp_path):
    original = wiki_module._wiki_request
    make_fetcher(fake.api_url, tmp_path).fetch("Tennis")
    with pytest.raises(MissingPageError):
        make_fetcher(fake.api_url, tmp_path).fetch("Nope")
    assert wiki_module._wiki_request is original
    assert wiki_module.API_URL == "http://en.wikipedia.org/w/api.php"


# -- the cache ------------------------------------------------------------------------------
def test_cache_serves_pages_offline(tmp_path):
    with FakeWiki() as fake:
        first = make_fetcher(fake.api_url, tmp_path).fetch("Tennis")
        api_url = fake.api_url
    # The server is gone: the cached copy is all we have, and it is enough.
    again = make_fetcher(api_url, tmp_path, timeout=0.5, max_retries=0).fetch("Tennis")
    assert again.from_cache
    assert again == first


def test_cache_file_is_json_with_the_page_fields(fake, tmp_path):
    fetcher = make_fetcher(fake.api_url, tmp_path)
    page = fetcher.fetch("Soccer")
    path = fetcher.cache.path_for("Soccer")
    record = json.loads(path.read_text(encoding="utf-8"))
    assert {"title", "text", "revision_id", "url", "fetched_at", "pageid"} <= set(record)
    assert record["title"] == page.title == "Association football"
    assert path.parent.name.startswith("127.0.0.1")  # one folder per API host
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # atomic write


def test_cached_page_is_not_fetched_again_unless_refresh(fake, tmp_path):
    make_fetcher(fake.api_url, tmp_path).fetch("Tennis")
    sent = len(fake.requests)
    assert make_fetcher(fake.api_url, tmp_path).fetch("Tennis").from_cache
    assert len(fake.requests) == sent
    fresh = make_fetcher(fake.api_url, tmp_path, refresh=True).fetch("Tennis")
    assert not fresh.from_cache
    assert len(fake.requests) > sent


def test_corrupt_cache_file_is_ignored_and_refetched(fake, tmp_path):
    fetcher = make_fetcher(fake.api_url, tmp_path)
    fetcher.fetch("Tennis")
    fetcher.cache.path_for("Tennis").write_text("{not json", encoding="utf-8")
    page = make_fetcher(fake.api_url, tmp_path).fetch("Tennis")
    assert not page.from_cache and page.title == "Tennis"


def test_no_cache_writes_nothing(fake, tmp_path):
    WikipediaFetcher(api_url=fake.api_url, cache_dir=tmp_path, use_cache=False,
                     min_interval=0).fetch("Tennis")
    assert list(tmp_path.iterdir()) == []


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SIMTOOLS_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "wikipedia"
    monkeypatch.delenv("SIMTOOLS_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "simtools" / "wikipedia"


# -- configuration ----------------------------------------------------------------------------
def test_api_url_default_is_https_and_env_overrides(monkeypatch):
    monkeypatch.delenv(API_URL_ENV, raising=False)
    assert resolve_api_url() == DEFAULT_API_URL
    assert DEFAULT_API_URL.startswith("https://")
    monkeypatch.setenv(API_URL_ENV, "http://127.0.0.1:1/w/api.php")
    assert resolve_api_url() == "http://127.0.0.1:1/w/api.php"
    assert resolve_api_url("https://de.wikipedia.org/w/api.php").startswith("https://de.")


@pytest.mark.parametrize("url", ["ftp://example.org/api.php", "en.wikipedia.org/w/api.php",
                                 "https://"])
def test_api_url_must_be_http(url):
    with pytest.raises(ValueError, match="is not an http"):
        resolve_api_url(url)


@pytest.mark.parametrize(("option", "value", "message"), [
    ("timeout", 0, "timeout must be > 0"),
    ("max_retries", -1, "max_retries must be >= 0"),
    ("min_interval", -1, "min_interval must be >= 0"),
    ("max_wait", -1, "max_wait must be >= 0"),
    ("budget", 0, "budget must be > 0 seconds or None"),
])
def test_client_options_are_checked(option, value, message):
    with pytest.raises(ValueError, match=message):
        ApiClient("http://127.0.0.1:1/w/api.php", **{option: value})


# -- transport failures -----------------------------------------------------------------------
def test_server_that_never_answers_times_out(fake, tmp_path):
    fake.mode = "hang"
    sleeps = Sleeps()
    fetcher = make_fetcher(fake.api_url, tmp_path, timeout=0.2, max_retries=1, sleep=sleeps)
    with pytest.raises(ApiUnreachableError, match=r"cannot reach .*timed out.*2 attempt"):
        fetcher.fetch("Tennis")
    assert len(fake.requests) == 2
    assert sleeps == [1.0]  # one backoff between the two attempts


def test_connection_refused_is_a_clear_message(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/w/api.php"
    sleeps = Sleeps()
    fetcher = make_fetcher(url, tmp_path, timeout=1, max_retries=2, sleep=sleeps)
    with pytest.raises(ApiUnreachableError, match=r"\(connection refused\) after 3 attempt\(s\)$"):
        fetcher.fetch("Tennis")
    assert fetcher.client.calls == 3
    assert sleeps == [1.0, 2.0]


def test_429_then_success_honours_retry_after(fake, tmp_path):
    fake.script = [("status", 429, {"Retry-After": "3"}), ("status", 429, {})]
    sleeps = Sleeps()
    page = make_fetcher(fake.api_url, tmp_path, sleep=sleeps).fetch("Tennis")
    assert page.title == "Tennis"
    assert sleeps == [3.0, 2.0]  # Retry-After first, then exponential backoff (1 * 2**1)


def test_5xx_is_retried_with_exponential_backoff(fake, tmp_path):
    fake.script = [("status", 503, {}), ("status", 502, {}), ("status", 500, {})]
    sleeps = Sleeps()
    assert make_fetcher(fake.api_url, tmp_path, sleep=sleeps).fetch("Tennis").title == "Tennis"
    assert sleeps == [1.0, 2.0, 4.0]


def test_persistent_5xx_gives_up_with_the_status(fake, tmp_path):
    fake.mode = "500"
    with pytest.raises(BadResponseError, match="HTTP 500"):
        make_fetcher(fake.api_url, tmp_path, max_retries=2).fetch("Tennis")
    assert len(fake.requests) == 3


def test_backoff_is_capped(fake, tmp_path):
    fake.script = [("status", 429, {"Retry-After": "100000"})]
    sleeps = Sleeps()
    make_fetcher(fake.api_url, tmp_path, sleep=sleeps, max_wait=60).fetch("Tennis")
    assert sleeps == [60.0]


def test_default_waits_are_bounded(fake, tmp_path):
    # A server asking for a day's pause gets 30 s per retry, and a run never waits past its budget.
    fake.script = [("status", 429, {"Retry-After": "86400"})]
    sleeps = Sleeps()
    fetcher = WikipediaFetcher(api_url=fake.api_url, cache_dir=tmp_path, sleep=sleeps,
                               min_interval=0)
    assert fetcher.fetch("Tennis").title == "Tennis"
    assert sleeps == [30.0]
    assert fetcher.client.budget == 600.0 and fetcher.client.timeout == 30.0


@pytest.mark.parametrize("mode", ["drip", "drip_headers"])
def test_slow_drip_is_cut_off_at_the_request_deadline(fake, tmp_path, mode):
    # One byte every 0.2 s never trips a 1 s read timeout; dripping the whole first answer
    # would take over 40 s. The deadline covers the request as a whole, headers included.
    fake.mode = mode
    fetcher = make_fetcher(fake.api_url, tmp_path, timeout=1, max_retries=0)
    start = time.monotonic()
    with pytest.raises(ApiUnreachableError, match=r"timed out: no complete answer within 1 s"):
        fetcher.fetch("Tennis")
    assert time.monotonic() - start < 20  # well before the drip would have finished
    assert len(fake.requests) == 1


def test_deadline_cut_is_retried_like_a_timeout(fake, tmp_path):
    fake.script = ["drip"]
    sleeps = Sleeps()
    page = make_fetcher(fake.api_url, tmp_path, timeout=1, max_retries=1, sleep=sleeps).fetch(
        "Tennis")
    assert page.title == "Tennis" and sleeps == [1.0]


def test_budget_ends_the_retries_and_the_remaining_titles(fake, tmp_path):
    fake.mode = "500"
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    fetcher = make_fetcher(fake.api_url, tmp_path, max_retries=10, budget=10, sleep=sleep,
                           clock=lambda: now[0])
    report = fetcher.fetch_many(["Tennis", "Machine learning"])
    # Attempts at t = 0, 1, 3 and 7 s; the next wait (8 s) would overrun the 10 s budget.
    assert len(fake.requests) == 4 and now[0] == 7
    assert "HTTP 500" in report.failures["Tennis"]
    assert "no time left in the 10 s budget" in report.failures["Tennis"]
    assert "budget" in report.failures["Machine learning"]  # not even tried
    assert not report.pages


def test_spent_budget_fails_at_once(fake, tmp_path):
    now = [0.0]
    client = ApiClient(fake.api_url, min_interval=0, budget=5, clock=lambda: now[0])
    client.request({"prop": "info|pageprops", "titles": "Tennis", "redirects": ""})
    now[0] = 5.0
    with pytest.raises(BudgetExhaustedError, match=r"the time budget of 5 s is spent"):
        client.request({"prop": "info|pageprops", "titles": "Tennis", "redirects": ""})
    assert len(fake.requests) == 1 and client.budget_exhausted
    assert ApiClient(fake.api_url, budget=None).budget is None  # no overall limit


def test_retry_after_as_http_date():
    assert _parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert _parse_retry_after("7") == 7.0
    assert _parse_retry_after("soon") is None


def test_non_json_answer_is_a_clear_error(fake, tmp_path):
    fake.mode = "html"
    with pytest.raises(BadResponseError, match="did not answer JSON .*text/html"):
        make_fetcher(fake.api_url, tmp_path).fetch("Tennis")


def test_api_error_answer_is_reported(fake):
    client = ApiClient(fake.api_url, min_interval=0)
    with pytest.raises(BadResponseError, match="refused the query: badparams"):
        client.request({"action": "parse", "page": "Tennis"})


def test_polite_pacing_between_calls(fake):
    now = [0.0]
    sleeps = Sleeps()
    client = ApiClient(fake.api_url, min_interval=0.5, sleep=sleeps, clock=lambda: now[0])
    client.request({"prop": "info|pageprops", "titles": "Tennis", "redirects": ""})
    now[0] = 0.2
    client.request({"prop": "info|pageprops", "titles": "Tennis", "redirects": ""})
    assert sleeps == [pytest.approx(0.3)]


# -- many titles ------------------------------------------------------------------------------
def test_one_failure_does_not_lose_the_other_pages(fake, tmp_path):
    report = make_fetcher(fake.api_url, tmp_path).fetch_many(
        ["Machine learning", "Nope", "Mercury", "Soccer", "Association football"])
    assert [p.title for p in report.pages] == ["Machine learning", "Association football"]
    assert set(report.failures) == {"Nope", "Mercury"}
    assert report.duplicates == {"Association football": "Soccer"}


def test_unreachable_api_falls_back_to_cache_without_more_waiting(tmp_path):
    with FakeWiki() as fake:
        make_fetcher(fake.api_url, tmp_path).fetch("Tennis")
        api_url = fake.api_url
    fetcher = make_fetcher(api_url, tmp_path, refresh=True, timeout=0.5, max_retries=0)
    report = fetcher.fetch_many(["Machine learning", "Tennis", "Artificial intelligence"])
    assert [p.title for p in report.pages] == ["Tennis"]
    assert set(report.failures) == {"Machine learning", "Artificial intelligence"}
    assert fetcher.client.calls == 1  # gave up on the network after the first failure


# -- hold-out style check: nearest page classifies tweets ---------------------------------------
def test_tweets_are_classified_by_their_nearest_page(tmp_path, tweets):
    with FakeWiki() as fake:
        report = make_fetcher(fake.api_url, tmp_path).fetch_many(list(FOUR_PAGES))
    assert not report.failures
    queries = list(tweets.values())
    for metric in ("cosine", "normalized_euclidean"):
        index = build_index(report.pages, encoder="count", metric=metric)
        predicted = [hits[0].label for hits in index.search(queries, k=1)]
        assert predicted == list(tweets), metric
    # Raw counts under Euclidean distance: long pages lose to the shortest one, whatever the topic.
    index = build_index(report.pages, encoder="count", metric="euclidean")
    predicted = [hits[0].label for hits in index.search(queries, k=1)]
    shortest = min(report.pages, key=lambda p: len(p.text.split())).title
    assert predicted.count(shortest) >= 2
