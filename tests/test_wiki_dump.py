"""Dump streaming, wikitext cleaning, and batched, resumable index builds."""

from __future__ import annotations

import bz2
import json
import time
import tracemalloc
from pathlib import Path

import pytest

pytest.importorskip("mwparserfromhell")

from folder_tools import live

from simtools.index import Index  # noqa: E402
from simtools.wiki.build import PROGRESS_NAME, build_dump_index  # noqa: E402
from simtools.wiki.dump import (  # noqa: E402
    DEFAULT_MAX_NESTING,
    DEFAULT_MAX_PAGE_BYTES,
    DumpError,
    DumpStats,
    MarkupTooDeepError,
    clean_wikitext,
    iter_dump,
)
from tests.conftest import shared_file  # noqa: E402
from tests.fakewiki import SAMPLE_PAGES, TENNIS, dump_xml, multistream_cut, page_xml  # noqa: E402

FRAGMENT = "wikipedia/enwiki-sample-pages-articles.xml.bz2"

def write_dump(path: Path, pages: list[str] = SAMPLE_PAGES, *, version: str | None = "0.11",
               compress: bool = True) -> Path:
    data = dump_xml(pages, version).encode("utf-8")
    path.write_bytes(bz2.compress(data) if compress else data)
    return path


@pytest.fixture
def sample_dump(tmp_path: Path) -> Path:
    return write_dump(tmp_path / "sample.xml.bz2")


# -- cleaning -------------------------------------------------------------------------------------
def test_clean_keeps_prose_links_and_headings():
    text, _ = clean_wikitext(TENNIS)
    assert text.startswith("Tennis is a racket sport played on a court.")
    assert "Players hit a ball over a net. See the ITF & more." in text
    assert "\nHistory\n" in text
    assert "The game began in England in the 19th century." in text
    assert "Bold words stay." in text


@pytest.mark.parametrize("gone", [
    "Infobox", "cite web", "Rules", "itf", "editors", "Tennis ball", "thumb", "Spencer Gore",
    "Winner", "hidden note", "Category", "Racket sports", "fr:", "NOTOC", "{{", "}}", "[[", "]]",
    "<", "'''", "http",
])
def test_clean_strips_markup(gone):
    text, _ = clean_wikitext(TENNIS)
    assert gone not in text


def test_clean_collects_categories_without_sort_keys():
    _, categories = clean_wikitext(TENNIS)
    assert categories == ["Tennis", "Racket sports"]


def test_clean_keeps_text_of_a_link_to_a_category_page():
    text, categories = clean_wikitext("See [[:Category:Tennis|tennis articles]] for more.")
    assert text == "See tennis articles for more."
    assert categories == []


def test_clean_survives_unbalanced_markup():
    text, _ = clean_wikitext("Start {{template [[link]] and }} stray }} end.")
    assert text == "Start stray end."
    text, _ = clean_wikitext("Start {{never closed, then a [[link]] and {{a|b}} the end.")
    assert text == "Start never closed, then a link and the end."


def test_deeply_nested_markup_is_refused_quickly():
    # Unclosed tags cost mwparserfromhell a scan to the end of the page each: these 20,000 took
    # about 9 CPU s. The nesting is measured by a linear scan first, and the page refused.
    start = time.process_time()
    with pytest.raises(MarkupTooDeepError, match=r"more than 50 tags open at once"):
        clean_wikitext("<b>" * 20_000 + "text")
    assert time.process_time() - start < 5
    assert DEFAULT_MAX_NESTING == 50


def test_nesting_cap_is_a_parameter():
    nested = "<b><i><span>deep</span></i></b> words"
    assert clean_wikitext(nested, max_nesting=3)[0] == "deep words"
    with pytest.raises(MarkupTooDeepError, match="more than 2 tags"):
        clean_wikitext(nested, max_nesting=2)
    assert clean_wikitext("<b>" * 200 + "x", max_nesting=None)[0].endswith("x")
    # Tags that need no closing tag, self-closed tags and closed tags do not add up.
    assert clean_wikitext("a<br>b<br/>c<li>d<b>e</b>" * 100, max_nesting=1)[0].startswith("a")


def test_openers_that_never_become_tags_are_cleaned_quickly():
    # "<b " with no ">" before the next "<" is text to MediaWiki, but mwparserfromhell scanned to
    # the end of the page for each one (quadratic: about 18 CPU s for these 5,000).
    start = time.process_time()
    text, _ = clean_wikitext('<b x="' * 5_000 + " end")
    assert time.process_time() - start < 5
    assert text.startswith('<b x="<b x="') and text.endswith("end")
    assert clean_wikitext("if a<b then c")[0] == "if a<b then c"


# -- streaming ------------------------------------------------------------------------------------
def test_iter_dump_skips_redirects_other_namespaces_and_empty_pages(sample_dump):
    stats = DumpStats()
    pages = list(iter_dump(sample_dump, stats=stats))
    assert [p.title for p in pages] == ["Tennis", "Association football", "Machine learning"]
    assert (stats.pages_seen, stats.articles, stats.redirects, stats.other_namespaces,
            stats.empty) == (6, 3, 1, 1, 1)


def test_iter_dump_keeps_identity_and_categories(sample_dump):
    first = next(iter_dump(sample_dump))
    assert (first.pageid, first.revision_id, first.timestamp) == (3, 30, "2020-01-01T00:00:00Z")
    assert first.categories == ("Tennis", "Racket sports")
    assert first.url == "https://test.wikipedia.org/wiki/Tennis"  # base from <siteinfo>
    meta = first.metadata()
    assert meta["source"] == "wikipedia-dump" and meta["categories"] == ["Tennis", "Racket sports"]


@pytest.mark.parametrize("version", ["0.10", "0.11", "0.3", None])
def test_iter_dump_reads_any_export_version(tmp_path, version):
    path = write_dump(tmp_path / "d.xml.bz2", version=version)
    assert len(list(iter_dump(path))) == 3


def test_iter_dump_reads_uncompressed_xml(tmp_path):
    path = write_dump(tmp_path / "d.xml", compress=False)
    assert len(list(iter_dump(path))) == 3


def test_iter_dump_limit(sample_dump):
    assert [p.title for p in iter_dump(sample_dump, limit=2)] == ["Tennis", "Association football"]
    with pytest.raises(ValueError, match="positive"):
        list(iter_dump(sample_dump, limit=0))


def test_iter_dump_skip_through_resumes_after_a_page(sample_dump):
    assert [p.title for p in iter_dump(sample_dump, skip_through=7)] == ["Machine learning"]
    with pytest.raises(DumpError, match="page id 12345 was never reached"):
        list(iter_dump(sample_dump, skip_through=12345))


def test_not_bz2_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.xml.bz2"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DumpError, match=r"junk\.xml\.bz2 is neither bz2 nor XML"):
        list(iter_dump(path))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(iter_dump(tmp_path / "nope.xml.bz2"))


def test_bz2_of_non_xml_is_a_clear_error(tmp_path):
    path = tmp_path / "text.xml.bz2"
    path.write_bytes(bz2.compress(b"just some words, no markup at all\n" * 10))
    with pytest.raises(DumpError, match="not well-formed XML"):
        list(iter_dump(path))


def test_xml_that_is_not_mediawiki_is_a_clear_error(tmp_path):
    path = tmp_path / "feed.xml.bz2"
    path.write_bytes(bz2.compress(b"<rss><channel><title>x</title></channel></rss>"))
    with pytest.raises(DumpError, match="not a MediaWiki export .*'rss'"):
        list(iter_dump(path))


def test_truncated_bz2_keeps_the_pages_read_and_says_how_many(tmp_path):
    pages = [page_xml(f"Page {i}", i, f"Article number {i} about [[topic {i}]]. " * 40)
             for i in range(1, 41)]
    path = tmp_path / "cut.xml.bz2"
    path.write_bytes(multistream_cut(pages))
    got = []
    with pytest.raises(DumpError, match=r"cut\.xml\.bz2 is truncated .* article\(s\) were read"
                       ) as info:
        got.extend(iter_dump(path))
    assert 0 < len(got) < 40
    assert info.value.pages_read == len(got)


def test_truncated_xml_is_reported(tmp_path):
    data = dump_xml(SAMPLE_PAGES).encode("utf-8")
    path = tmp_path / "cut.xml"
    path.write_bytes(data[: data.index(b"<page><title>Machine")] + b"<page><title>Mach")
    got = []
    with pytest.raises(DumpError, match="truncated or corrupted"):
        got.extend(iter_dump(path))
    assert [p.title for p in got] == ["Tennis", "Association football"]


def test_oversized_page_is_skipped_and_counted(tmp_path):
    pages = [page_xml("Small", 1, "A small page about [[tennis]]."),
             page_xml("Huge", 2, "word " * 500_000),  # 2.5 MB of wikitext
             page_xml("Last", 3, "The last page.")]
    path = write_dump(tmp_path / "d.xml.bz2", pages)
    stats = DumpStats()
    assert [p.title for p in iter_dump(path, stats=stats)] == ["Small", "Last"]
    assert stats.too_large == 1 and stats.skipped_titles == ["Huge"]
    assert DEFAULT_MAX_PAGE_BYTES == 2 * 1024 * 1024
    assert [p.title for p in iter_dump(path, max_page_bytes=3_000_000)] == ["Small", "Huge", "Last"]
    assert [p.title for p in iter_dump(path, max_page_bytes=16)] == ["Last"]  # 14 bytes
    with pytest.raises(ValueError, match="max_page_bytes must be a positive"):
        list(iter_dump(path, max_page_bytes=0))


def test_oversized_page_is_never_held_in_memory(tmp_path):
    path = write_dump(tmp_path / "big.xml", [page_xml("Huge", 1, "word " * 4_000_000),
                                             page_xml("Small", 2, "A small page.")],
                      compress=False)  # a 20 MB page
    stats = DumpStats()
    tracemalloc.start()
    try:
        titles = [p.title for p in iter_dump(path, stats=stats, max_page_bytes=100_000)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert titles == ["Small"] and stats.too_large == 1
    assert peak < 5_000_000, f"peak {peak / 1e6:.1f} MB while reading past a 20 MB page"


def test_multibyte_text_is_measured_in_bytes(tmp_path):
    path = write_dump(tmp_path / "d.xml.bz2", [page_xml("Greek", 1, "αβγδ" * 10)])  # 80 bytes
    assert len(list(iter_dump(path, max_page_bytes=80))) == 1
    stats = DumpStats()
    assert list(iter_dump(path, stats=stats, max_page_bytes=79)) == [] and stats.too_large == 1


def test_deeply_nested_page_is_skipped_and_counted(tmp_path):
    pages = [page_xml("Nested", 1, "<b>" * 20_000 + "x"), page_xml("Fine", 2, "A fine page.")]
    path = write_dump(tmp_path / "d.xml.bz2", pages)
    for workers in (1, 2):
        stats = DumpStats()
        assert [p.title for p in iter_dump(path, stats=stats, workers=workers)] == ["Fine"]
        assert stats.too_nested == 1 and stats.skipped_titles == ["Nested"]
        assert stats.parse_failures == 0
    path = write_dump(tmp_path / "e.xml.bz2", [page_xml("Nested", 1, "<b>" * 60 + "x")])
    assert list(iter_dump(path)) == []
    assert [p.title for p in iter_dump(path, max_nesting=None)] == ["Nested"]
    assert [p.title for p in iter_dump(path, max_nesting=60)] == ["Nested"]


def test_duplicate_page_ids_are_skipped_and_counted(tmp_path):
    pages = [page_xml("First", 5, "The first page with id five."),
             page_xml("Other", 6, "Another page."),
             page_xml("Second", 5, "A second page claiming id five.")]
    path = write_dump(tmp_path / "d.xml.bz2", pages)
    stats = DumpStats()
    assert [p.title for p in iter_dump(path, stats=stats)] == ["First", "Other"]
    assert stats.duplicates == 1
    # Resuming after page 5 does not let its second copy in either.
    assert [p.title for p in iter_dump(path, skip_through=5)] == ["Other"]


# -- the real fragment ------------------------------------------------------------------------------
def test_real_fragment_articles_and_cleaning():
    path = shared_file(FRAGMENT)
    stats = DumpStats()
    pages = list(iter_dump(path, stats=stats))
    assert (stats.pages_seen, len(pages), stats.redirects, stats.other_namespaces) == (
        206, 106, 99, 1)
    assert pages[0].title == "Anarchism" and pages[0].pageid == 12
    assert "Anarchism" in pages[0].categories
    assert sum(bool(p.categories) for p in pages) >= 95  # a few get theirs from templates
    for page in pages:
        assert "{{" not in page.text and "[[" not in page.text and "<ref" not in page.text
        assert len(page.text) > 20


# -- building -----------------------------------------------------------------------------------
def test_build_dump_index_is_searchable_with_metadata(sample_dump, tmp_path):
    out = tmp_path / "index"
    report = build_dump_index(sample_dump, out, label_from="category", batch_size=2)
    assert report.complete and report.articles_indexed == 3 and report.error is None
    index = Index.load(out)
    assert index.ids == ["3", "7", "9"]
    assert index.labels == ["Tennis", "Football", "Machine learning"]
    hit = index.search(["a racket and a net on a court"], k=1)[0][0]
    assert hit.title == "Tennis"
    assert hit.metadata["categories"] == ["Tennis", "Racket sports"]
    progress = json.loads((live(out) / PROGRESS_NAME).read_text())
    assert progress["complete"] and progress["last_pageid"] == 9


@pytest.mark.parametrize("encoder", ["count", "tfidf"])
def test_vocabulary_encoders_fit_on_the_first_pages(sample_dump, tmp_path, encoder):
    out = tmp_path / encoder
    report = build_dump_index(sample_dump, out, encoder=encoder, fit_pages=2, batch_size=1)
    # The vocabulary comes from Tennis and Association football; the Machine learning page has
    # none of their words, so its vector is zero: it is skipped and counted, not an error.
    assert report.skipped_no_tokens == 1
    assert Index.load(out).ids == ["3", "7"]
    everything = build_dump_index(sample_dump, tmp_path / "all", encoder=encoder, fit_pages=3)
    assert everything.skipped_no_tokens == 0 and everything.articles_indexed == 3


def test_resume_after_an_interruption_skips_what_is_done(tmp_path):
    pages = [page_xml(f"Page {i}", i, f"Words about subject {i} and topic {i % 3}.")
             for i in range(1, 31)]
    dump = write_dump(tmp_path / "d.xml.bz2", pages)
    out = tmp_path / "index"
    seen = []

    def interrupt_at_17(n: int) -> None:
        seen.append(n)
        if len(seen) == 17:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_dump_index(dump, out, batch_size=4, checkpoint_every=5, on_article=interrupt_at_17)
    progress = json.loads((live(out) / PROGRESS_NAME).read_text())
    assert not progress["complete"]
    done = len(Index.load(out))
    assert 0 < done < 30
    with pytest.raises(ValueError, match="unfinished build; pass resume=True"):
        build_dump_index(dump, out)
    report = build_dump_index(dump, out, batch_size=4, checkpoint_every=5, resume=True)
    assert report.resumed_after_pageid == progress["last_pageid"]
    assert report.articles_this_run == 30 - done
    index = Index.load(out)
    assert index.ids == [str(i) for i in range(1, 31)]
    # Resuming a finished build does nothing.
    again = build_dump_index(dump, out, resume=True)
    assert again.articles_this_run == 0 and again.complete


def test_resume_with_limit_continues_up_to_the_new_limit(sample_dump, tmp_path):
    out = tmp_path / "index"
    build_dump_index(sample_dump, out, limit=1)
    assert Index.load(out).ids == ["3"]
    report = build_dump_index(sample_dump, out, limit=2, resume=True)
    assert report.articles_this_run == 1
    assert Index.load(out).ids == ["3", "7"]


def test_resume_with_other_settings_is_refused(sample_dump, tmp_path):
    out = tmp_path / "index"
    build_dump_index(sample_dump, out, limit=1)
    with pytest.raises(ValueError, match="metric: was 'cosine', now 'euclidean'"):
        build_dump_index(sample_dump, out, metric="euclidean", resume=True)


def test_truncated_dump_still_saves_what_was_read(tmp_path):
    pages = [page_xml(f"Page {i}", i, f"Article {i} about [[topic {i}]]. " * 40)
             for i in range(1, 41)]
    dump = tmp_path / "cut.xml.bz2"
    dump.write_bytes(multistream_cut(pages))
    out = tmp_path / "index"
    with pytest.raises(DumpError, match="indexed in") as info:
        build_dump_index(dump, out, batch_size=8)
    report = info.value.report
    assert report.articles_indexed > 0 and not report.complete
    assert len(Index.load(out)) == report.articles_indexed
    assert json.loads((live(out) / PROGRESS_NAME).read_text())["error"]


def test_duplicate_page_id_does_not_fail_the_build(tmp_path):
    pages = [page_xml(f"Page {i}", i, f"Words about subject {i}.") for i in range(1, 6)]
    pages.insert(3, page_xml("Again", 2, "A second page with id two."))
    dump = write_dump(tmp_path / "d.xml.bz2", pages)
    report = build_dump_index(dump, tmp_path / "index", batch_size=2)
    assert report.complete and report.stats.duplicates == 1
    assert Index.load(tmp_path / "index").ids == ["1", "2", "3", "4", "5"]
    assert report.to_dict()["stats"]["duplicates"] == 1


def test_build_passes_the_caps_and_reports_the_skips(tmp_path):
    pages = [page_xml("Big", 1, "word " * 100), page_xml("Deep", 2, "<b><i>x"),
             page_xml("Fine", 3, "A fine page.")]
    dump = write_dump(tmp_path / "d.xml.bz2", pages)
    report = build_dump_index(dump, tmp_path / "index", max_page_bytes=100, max_nesting=1)
    assert (report.stats.too_large, report.stats.too_nested) == (1, 1)
    assert Index.load(tmp_path / "index").ids == ["3"]
    record = report.to_dict()["stats"]
    assert record["too_large"] == 1 and record["too_nested"] == 1


def test_build_options_are_checked(sample_dump, tmp_path):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        build_dump_index(sample_dump, tmp_path / "x", batch_size=0)
    with pytest.raises(ValueError, match="unknown label source 'tags'"):
        build_dump_index(sample_dump, tmp_path / "x", label_from="tags")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_dump_index(tmp_path / "missing.xml.bz2", tmp_path / "x")


def test_real_fragment_builds_in_bounded_batches(tmp_path):
    path = shared_file(FRAGMENT)
    report = build_dump_index(path, tmp_path / "index", limit=30, batch_size=8,
                              checkpoint_every=10, label_from="category")
    assert report.articles_indexed == 30 and report.checkpoints >= 2
    assert report.pages_per_s > 0 and report.peak_memory_mib > 0
    index = Index.load(tmp_path / "index")
    hit = index.search(["anarchist political philosophy against the state"], k=1)[0][0]
    assert hit.title == "Anarchism"


# -- cleaning in worker processes ----------------------------------------------------------------
def test_workers_give_the_same_pages_in_the_same_order(tmp_path):
    pages = [page_xml(f"Page {i}", i, f"'''Page {i}''' is about [[topic {i % 7}]]." if i % 5
                      else "{{only a template}}") for i in range(1, 101)]
    dump = write_dump(tmp_path / "d.xml.bz2", pages)
    serial_stats, parallel_stats = DumpStats(), DumpStats()
    serial = list(iter_dump(dump, stats=serial_stats))
    parallel = list(iter_dump(dump, stats=parallel_stats, workers=2))
    assert parallel == serial and len(serial) == 80
    assert parallel_stats == serial_stats
    assert [p.pageid for p in iter_dump(dump, workers=2, limit=7, skip_through=50)] == [
        51, 52, 53, 54, 56, 57, 58]


def test_workers_keep_the_pages_before_a_truncation(tmp_path):
    pages = [page_xml(f"Page {i}", i, f"Article number {i} about [[topic {i}]]. " * 40)
             for i in range(1, 41)]
    path = tmp_path / "cut.xml.bz2"
    path.write_bytes(multistream_cut(pages))
    serial: list = []
    with pytest.raises(DumpError):
        serial.extend(iter_dump(path))
    parallel: list = []
    with pytest.raises(DumpError, match=r"is truncated .* article\(s\) were read"):
        parallel.extend(iter_dump(path, workers=2))
    assert parallel == serial and serial


def test_workers_must_be_positive(sample_dump):
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        list(iter_dump(sample_dump, workers=0))


def test_encoded_batches_are_added_in_few_large_calls(tmp_path, monkeypatch):
    import simtools.wiki.build as build

    monkeypatch.setattr(build, "ADD_EVERY", 6)
    calls = []
    original = Index.add_vectors

    def counting(self, vectors, **kwargs):
        calls.append(vectors.shape[0])
        return original(self, vectors, **kwargs)

    monkeypatch.setattr(Index, "add_vectors", counting)
    pages = [page_xml(f"Page {i}", i, f"Words about subject {i}.") for i in range(1, 24)]
    dump = write_dump(tmp_path / "d.xml.bz2", pages)
    build_dump_index(dump, tmp_path / "index", batch_size=2, checkpoint_every=100)
    assert calls == [6, 6, 6, 5]  # batches of 2 encoded, added 6 rows at a time, then the rest
    assert Index.load(tmp_path / "index").ids == [str(i) for i in range(1, 24)]
