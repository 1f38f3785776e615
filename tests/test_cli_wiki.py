"""``simtools index wikipedia`` and ``simtools index dump`` through click's CliRunner."""

from __future__ import annotations

import bz2
import json
import socket
import time

import pytest
from click.testing import CliRunner

pytest.importorskip("wikipedia")
pytest.importorskip("mwparserfromhell")

from simtools_cli.wiki import dump_command, wikipedia_command  # noqa: E402

from simtools.index import Index  # noqa: E402
from tests.conftest import shared_file  # noqa: E402
from tests.fakewiki import (  # noqa: E402
    FOUR_PAGES,
    SAMPLE_PAGES,
    FakeWiki,
    dump_xml,
    multistream_cut,
    page_xml,
)

FOUR = list(FOUR_PAGES)


@pytest.fixture
def fake():
    with FakeWiki(disambiguation={"Mercury": ["Mercury (planet)", "Mercury (element)"]}) as wiki:
        yield wiki


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMTOOLS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SIMTOOLS_WIKIPEDIA_API_URL", raising=False)
    return CliRunner()


def no_traceback(result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- wikipedia ----------------------------------------------------------------------------------
def test_index_four_pages_then_search(fake, runner, tmp_path):
    out = tmp_path / "wiki-index"
    result = runner.invoke(wikipedia_command, [*FOUR, "--out", str(out),
                                               "--api-url", fake.api_url, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["pages"] == 4 and summary["failed"] == [] and summary["encoder"] == "bm25"
    index = Index.load(out)
    assert sorted(index.labels) == sorted(FOUR)
    hit = index.search(["what a goal in the football match"], k=1)[0][0]
    assert hit.label == "Association football"
    assert hit.metadata["url"].startswith("https://fake.wiki/wiki/")


def test_api_url_from_the_environment(fake, runner, tmp_path):
    result = runner.invoke(wikipedia_command, ["Tennis", "--out", str(tmp_path / "i")],
                           env={"SIMTOOLS_WIKIPEDIA_API_URL": fake.api_url})
    assert result.exit_code == 0, result.output
    assert "indexed 1 page(s)" in result.stderr


def test_some_titles_fail_others_are_indexed_exit_1(fake, runner, tmp_path):
    out = tmp_path / "i"
    result = runner.invoke(wikipedia_command, ["Tennis", "Nope", "Mercury", "--out", str(out),
                                               "--api-url", fake.api_url])
    assert result.exit_code == 1
    assert "failed: Nope: no page titled 'Nope'" in result.stderr
    assert "failed: Mercury: 'Mercury' is a disambiguation page; pick one of: Mercury (planet)" \
        in result.stderr
    assert Index.load(out).labels == ["Tennis"]
    no_traceback(result)


def test_all_titles_fail_no_index_exit_1(fake, runner, tmp_path):
    out = tmp_path / "i"
    result = runner.invoke(wikipedia_command, ["Nope", "--out", str(out),
                                               "--api-url", fake.api_url])
    assert result.exit_code == 1
    assert "none of the 1 title(s) could be fetched; no index written" in result.stderr
    assert not out.exists()


def test_empty_title_is_a_usage_error(fake, runner, tmp_path):
    result = runner.invoke(wikipedia_command, ["Tennis", "", "--out", str(tmp_path / "i"),
                                               "--api-url", fake.api_url])
    assert result.exit_code == 2
    assert "title 2 is empty" in result.stderr
    assert fake.requests == []


def test_no_network_is_one_clear_line(runner, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = runner.invoke(wikipedia_command, [
        "Tennis", "--out", str(tmp_path / "i"), "--api-url", f"http://127.0.0.1:{port}/w/api.php",
        "--retries", "0", "--timeout", "1"])
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1" in result.stderr
    assert "not in the page cache" in result.stderr and "--api-url" in result.stderr
    assert "--refresh" not in result.stderr  # it was not given
    no_traceback(result)


def test_slow_drip_server_ends_within_the_deadline(fake, runner, tmp_path):
    # One byte every 0.2 s never trips a per-read timeout; the whole answer would take minutes.
    fake.mode = "drip"
    start = time.monotonic()
    result = runner.invoke(wikipedia_command, ["Tennis", "--out", str(tmp_path / "i"),
                                               "--api-url", fake.api_url, "--timeout", "1",
                                               "--retries", "0"])
    assert time.monotonic() - start < 20
    assert result.exit_code == 1
    assert "failed: Tennis: cannot reach" in result.stderr
    assert "timed out: no complete answer within 1 s" in result.stderr
    no_traceback(result)


def test_budget_bounds_the_whole_run(fake, runner, tmp_path):
    fake.mode = "drip_headers"
    start = time.monotonic()
    result = runner.invoke(wikipedia_command, ["Tennis", "Machine learning", "--out",
                                               str(tmp_path / "i"), "--api-url", fake.api_url,
                                               "--timeout", "30", "--retries", "5",
                                               "--budget", "1"])
    assert time.monotonic() - start < 20
    assert result.exit_code == 1
    assert "budget" in result.stderr and "--budget" in result.stderr
    assert len(fake.requests) == 1  # cut at 1 s; no time left to retry or for the next title
    no_traceback(result)


def test_help_documents_the_deadline_and_the_budget(runner):
    result = runner.invoke(wikipedia_command, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # click rewraps help text
    assert "--budget" in text and "not per read" in text


def test_non_json_server_is_one_clear_line(fake, runner, tmp_path):
    fake.mode = "html"
    result = runner.invoke(wikipedia_command, ["Tennis", "--out", str(tmp_path / "i"),
                                               "--api-url", fake.api_url])
    assert result.exit_code == 1
    assert "did not answer JSON" in result.stderr
    no_traceback(result)


def test_reindex_offline_from_the_cache_and_refresh(runner, tmp_path):
    with FakeWiki() as fake:
        api_url = fake.api_url
        first = runner.invoke(wikipedia_command, [*FOUR, "--out", str(tmp_path / "a"),
                                                  "--api-url", api_url])
        assert first.exit_code == 0, first.output
    offline = runner.invoke(wikipedia_command, [*FOUR, "--out", str(tmp_path / "b"),
                                                "--api-url", api_url, "--json", "--retries", "0"])
    assert offline.exit_code == 0, offline.output
    assert json.loads(offline.stdout)["from_cache"] == 4
    refresh = runner.invoke(wikipedia_command, ["Tennis", "--out", str(tmp_path / "c"),
                                                "--api-url", api_url, "--refresh",
                                                "--retries", "0", "--timeout", "1"])
    # --refresh with the server gone: the cached copy is still used, and said so.
    assert refresh.exit_code == 0, refresh.output


def test_encoder_and_metric_options(fake, runner, tmp_path):
    out = tmp_path / "i"
    result = runner.invoke(wikipedia_command, [*FOUR, "--out", str(out), "--api-url",
                                               fake.api_url, "--encoder", "tfidf",
                                               "--metric", "euclidean"])
    assert result.exit_code == 0, result.output
    assert Index.load(out).metric.value == "euclidean"
    bad = runner.invoke(wikipedia_command, ["Tennis", "--out", str(out), "--api-url",
                                            fake.api_url, "--encoder", "bogus"])
    assert bad.exit_code == 1 and "unknown encoder 'bogus'" in bad.stderr
    assert fake.queries(titles="Tennis", prop="info|pageprops")  # from the first run only


def test_titles_from_stdin(fake, runner, tmp_path):
    result = runner.invoke(wikipedia_command, ["-", "--out", str(tmp_path / "i"),
                                               "--api-url", fake.api_url],
                           input="Tennis\n\nMachine learning\n")
    assert result.exit_code == 0, result.output
    assert sorted(Index.load(tmp_path / "i").labels) == ["Machine learning", "Tennis"]


@pytest.mark.parametrize("command", [wikipedia_command, dump_command])
def test_help_has_an_example(runner, command):
    result = runner.invoke(command, ["--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "simtools index" in result.output


def test_commands_are_reachable_from_the_main_group(runner):
    from simtools_cli.main import main

    for name in ("wikipedia", "dump"):
        result = runner.invoke(main, ["index", name, "--help"])
        assert result.exit_code == 0, result.output
        assert "--out" in result.output


# -- dump -------------------------------------------------------------------------------------------
@pytest.fixture
def sample_dump(tmp_path):
    path = tmp_path / "sample.xml.bz2"
    path.write_bytes(bz2.compress(dump_xml(SAMPLE_PAGES).encode("utf-8")))
    return path


def test_dump_builds_an_index_and_reports_rate(runner, sample_dump, tmp_path):
    out = tmp_path / "d"
    result = runner.invoke(dump_command, [str(sample_dump), "--out", str(out),
                                          "--label-from", "category"])
    assert result.exit_code == 0, result.output
    assert "indexed 3 article(s)" in result.stderr
    assert "pages/s" in result.stderr and "skipped 1 redirect(s), 1 non-article page(s)" \
        in result.stderr
    assert Index.load(out).labels == ["Tennis", "Football", "Machine learning"]


def test_dump_json_summary_and_limit(runner, sample_dump, tmp_path):
    result = runner.invoke(dump_command, [str(sample_dump), "--out", str(tmp_path / "d"),
                                          "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["articles_indexed"] == 2 and summary["complete"]
    assert summary["pages_per_s"] > 0


def test_dump_resume(runner, sample_dump, tmp_path):
    out = tmp_path / "d"
    # hashing: no vocabulary fitted on the first article, so every later one has a place
    assert runner.invoke(dump_command, [str(sample_dump), "--out", str(out), "--limit", "1",
                                        "--encoder", "hashing"]).exit_code == 0
    result = runner.invoke(dump_command, [str(sample_dump), "--out", str(out), "--resume",
                                          "--encoder", "hashing", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["resumed_after_pageid"] == 3 and summary["articles_this_run"] == 2
    assert len(Index.load(out)) == 3


def test_dump_caps_and_duplicates_are_skipped_and_reported(runner, tmp_path):
    pages = [page_xml("Big", 1, "word " * 100), page_xml("Deep", 2, "<b><i><u>deep words"),
             page_xml("Fine", 3, "A fine page."), page_xml("Again", 3, "Page three again.")]
    path = tmp_path / "d.xml.bz2"
    path.write_bytes(bz2.compress(dump_xml(pages).encode("utf-8")))
    out = tmp_path / "d"
    result = runner.invoke(dump_command, [str(path), "--out", str(out), "--max-page-bytes",
                                          "100", "--max-nesting", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert "1 too large, 1 too deeply nested, 1 duplicate id(s)" in result.stderr
    stats = json.loads(result.stdout)["stats"]
    assert (stats["too_large"], stats["too_nested"], stats["duplicates"]) == (1, 1, 1)
    assert Index.load(out).ids == ["3"]
    unlimited = runner.invoke(dump_command, [str(path), "--out", str(tmp_path / "all"),
                                             "--max-page-bytes", "0", "--max-nesting", "0"])
    assert unlimited.exit_code == 0, unlimited.output
    assert sorted(Index.load(tmp_path / "all").ids) == ["1", "2", "3"]
    help_text = " ".join(runner.invoke(dump_command, ["--help"]).output.split())
    assert "--max-page-bytes INTEGER RANGE" in help_text and "--max-nesting" in help_text


def test_dump_not_bz2_is_one_line(runner, tmp_path):
    path = tmp_path / "x.xml.bz2"
    path.write_bytes(b"PK\x03\x04 this is a zip")
    result = runner.invoke(dump_command, [str(path), "--out", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert "is neither bz2 nor XML" in result.stderr
    no_traceback(result)


def test_dump_truncated_keeps_pages_exit_1(runner, tmp_path):
    pages = [page_xml(f"Page {i}", i, f"Article {i} about [[topic {i}]]. " * 40)
             for i in range(1, 41)]
    path = tmp_path / "cut.xml.bz2"
    path.write_bytes(multistream_cut(pages))
    out = tmp_path / "d"
    result = runner.invoke(dump_command, [str(path), "--out", str(out)])
    assert result.exit_code == 1
    assert "is truncated" in result.stderr and "indexed in" in result.stderr
    assert 0 < len(Index.load(out)) < 40
    no_traceback(result)


def test_dump_on_the_real_fragment(runner, tmp_path):
    path = shared_file("wikipedia/enwiki-sample-pages-articles.xml.bz2")
    result = runner.invoke(dump_command, [str(path), "--out", str(tmp_path / "d"),
                                          "--limit", "10", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["articles_indexed"] == 10
