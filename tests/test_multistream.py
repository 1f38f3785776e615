"""Multistream dumps read by byte offset, and builds with worker processes (--workers)."""

from __future__ import annotations

import bz2
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("mwparserfromhell")

from simtools.data import Document  # noqa: E402
from simtools.errors import InputError  # noqa: E402
from simtools.index import Index  # noqa: E402
from simtools.index.build import build_index  # noqa: E402
from simtools.index.shards_store import read_manifest  # noqa: E402
from simtools.wiki.build import build_dump_index  # noqa: E402
from simtools.wiki.dump import DumpError  # noqa: E402
from simtools.wiki.multistream import (  # noqa: E402
    find_index,
    read_index,
    read_range,
    split_pages,
    stream_ranges,
    to_multistream,
    write_multistream,
)
from tests.conftest import shared_file  # noqa: E402
from tests.fakewiki import dump_xml, page_xml  # noqa: E402

FRAGMENT = "wikipedia/enwiki-sample-pages-articles.xml.bz2"


def synthetic(tmp_path: Path, pages: list[str], *, per_stream: int = 4) -> Path:
    """A multistream dump of ``pages`` (page XML) and its index, beside each other."""
    header, split, footer = split_pages(dump_xml(pages))
    out = tmp_path / "test-pages-articles-multistream.xml.bz2"
    write_multistream(header, split, out, tmp_path / "test-pages-articles-multistream-index.txt.bz2",
                      pages_per_stream=per_stream, footer=footer)
    return out


def numbered(n: int, start: int = 1) -> list[str]:
    return [page_xml(f"Page {i}", i, f"'''Page {i}''' is about [[topic {i % 7}]] and more.")
            for i in range(start, start + n)]


def same_index(a: Path, b: Path) -> None:
    one, two = Index.load(a), Index.load(b)
    assert one.ids == two.ids and one.labels == two.labels and one.metadata == two.metadata
    assert (one.stored_vectors() != two.stored_vectors()).nnz == 0


@pytest.fixture(scope="module")
def fragment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shared fragment, as published and converted to multistream, with a reference build."""
    plain = shared_file(FRAGMENT)
    folder = tmp_path_factory.mktemp("fragment")
    multi = folder / "enwiki-sample-pages-articles-multistream.xml.bz2"
    to_multistream(plain, multi, pages_per_stream=25)
    reference = folder / "reference"
    build_dump_index(plain, reference, label_from="category", batch_size=16)
    return {"plain": plain, "multi": multi, "reference": reference, "folder": folder}


# -- the file format -----------------------------------------------------------------------------
def test_the_fragment_becomes_a_multistream_dump_with_its_index(fragment):
    index = find_index(fragment["multi"])
    assert index is not None and index.name.endswith("-multistream-index.txt.bz2")
    entries = read_index(index)
    assert len(entries) == 206 and entries[1][2] == "Anarchism"
    ranges = stream_ranges(entries, 50)
    assert len(ranges) == 5 and ranges[-1].end is None
    assert sum(len(r.pageids) for r in ranges) == 206
    data, fault = read_range(fragment["multi"], ranges[1].start, ranges[1].end)
    assert fault is None and data.count(b"<page>") == len(ranges[1].pageids) == 50
    assert not data.rstrip().endswith(b"</mediawiki>")


def test_find_index_only_for_multistream_names(tmp_path):
    assert find_index(tmp_path / "enwiki-pages-articles.xml.bz2") is None
    assert find_index(tmp_path / "x-multistream.xml.bz2") is None  # no index beside it


def test_a_bad_index_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad-index.txt"
    bad.write_text("not an index\n")
    with pytest.raises(DumpError, match="is not a multistream index"):
        read_index(bad)


# -- builds ------------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
def test_a_multistream_build_equals_the_plain_one(fragment, workers, tmp_path):
    out = tmp_path / "multi"
    report = build_dump_index(fragment["multi"], out, label_from="category", batch_size=16,
                              workers=workers)
    assert report.reader == "multistream" and report.articles_indexed == 106
    assert report.stats.redirects == 99 and report.stats.pages_seen == 206
    assert {"read", "clean", "encode"} <= set(report.cpu_seconds_by_stage)
    if workers > 1:
        assert report.worker_peak_memory_mib > 0
    same_index(fragment["reference"], out)


def test_a_plain_dump_fanned_out_to_workers_equals_one_process(fragment, tmp_path):
    options = {"encoder": "tfidf", "fit_pages": 20, "batch_size": 8, "limit": 50}
    build_dump_index(fragment["plain"], tmp_path / "one", **options)
    report = build_dump_index(fragment["plain"], tmp_path / "two", workers=2, **options)
    assert report.reader == "plain" and report.articles_indexed == 50
    same_index(tmp_path / "one", tmp_path / "two")


def test_an_interrupted_multistream_build_resumes_in_shards(fragment, tmp_path):
    out = tmp_path / "multi"
    seen = []

    def interrupt_at_60(n: int) -> None:
        seen.append(n)
        if sum(seen) >= 60:
            raise KeyboardInterrupt

    common = {"label_from": "category", "batch_size": 16, "shard_size": 40,
              "checkpoint_every": 20, "workers": 2}
    with pytest.raises(KeyboardInterrupt):
        build_dump_index(fragment["multi"], out, on_article=interrupt_at_60, **common)
    done = read_manifest(out)["count"]
    assert 40 <= done < 106
    report = build_dump_index(fragment["multi"], out, resume=True, **common)
    assert report.articles_this_run == 106 - done and report.shards == 3
    same_index(fragment["reference"], out)


def test_limit_with_workers_takes_the_first_articles(fragment, tmp_path):
    report = build_dump_index(fragment["multi"], tmp_path / "m", limit=30, workers=2,
                              batch_size=8)
    assert report.articles_indexed == 30
    assert Index.load(tmp_path / "m").ids == Index.load(fragment["reference"]).ids[:30]


def test_a_truncated_multistream_dump_keeps_the_articles_before_the_cut(tmp_path):
    dump = synthetic(tmp_path, numbered(40))
    data = dump.read_bytes()
    dump.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(DumpError, match=r"truncated.* article\(s\) were read before the fault"
                       ) as info:
        build_dump_index(dump, tmp_path / "index", batch_size=4, workers=2)
    kept = Index.load(tmp_path / "index").ids
    assert kept == [str(i) for i in range(1, len(kept) + 1)] and 10 < len(kept) < 40
    assert info.value.report.articles_indexed == len(kept)


def test_a_page_id_met_in_an_earlier_stream_is_skipped(tmp_path):
    pages = numbered(10)
    pages.insert(8, page_xml("Again", 2, "A second page with id two, in a later stream."))
    report = build_dump_index(synthetic(tmp_path, pages), tmp_path / "index", workers=2,
                              batch_size=2)
    assert report.stats.duplicates == 1 and report.articles_indexed == 10
    assert Index.load(tmp_path / "index").ids == [str(i) for i in range(1, 11)]


def test_the_index_file_can_be_given(tmp_path):
    dump = synthetic(tmp_path, numbered(9))
    renamed = dump.rename(tmp_path / "renamed.xml.bz2")
    report = build_dump_index(renamed, tmp_path / "index", batch_size=2,
                              index_file=tmp_path / "test-pages-articles-multistream-index.txt.bz2")
    assert report.reader == "multistream" and report.articles_indexed == 9
    with pytest.raises(FileNotFoundError, match="multistream index .* does not exist"):
        build_dump_index(renamed, tmp_path / "x", index_file=tmp_path / "missing.txt.bz2")


def test_documents_encoded_by_workers_give_the_same_index(corpus):
    docs = [Document(f"{text} number {i}", f"{title} {i}", title)
            for i in range(30) for title, text in corpus.items()]
    for encoder in ("count", "hashing"):
        one = build_index(docs, encoder=encoder, batch_size=16)
        two = build_index(docs, encoder=encoder, batch_size=16, workers=2)
        assert one.ids == two.ids and one.labels == two.labels
        assert (one.stored_vectors() != two.stored_vectors()).nnz == 0


def test_the_dump_command_reads_a_multistream_dump_with_workers(tmp_path):
    from click.testing import CliRunner
    from simtools_cli.main import main

    dump = synthetic(tmp_path, numbered(20))
    result = CliRunner().invoke(main, ["index", "dump", str(dump), "--out", str(tmp_path / "i"),
                                       "--workers", "2", "--batch-size", "4", "--shard-size",
                                       "8", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(next(line for line in result.output.splitlines()
                              if line.startswith("{")))
    assert summary["reader"] == "multistream" and summary["workers"] == 2
    assert summary["shards"] == 3 and summary["articles_indexed"] == 20


def test_a_multistream_header_that_is_not_bz2_is_refused(tmp_path):
    dump = synthetic(tmp_path, numbered(5))
    data = dump.read_bytes()
    dump.write_bytes(b"garbage!" + data[8:])
    with pytest.raises(DumpError, match="does not start with a bz2 stream"):
        build_dump_index(dump, tmp_path / "index")


def test_a_dump_written_as_multistream_holds_the_same_pages(tmp_path):
    text = dump_xml(numbered(7))
    header, pages, footer = split_pages(text)
    out = tmp_path / "w-multistream.xml.bz2"
    write_multistream(header, pages, out, tmp_path / "w-multistream-index.txt", pages_per_stream=3,
                      footer=footer)
    again = split_pages(bz2.decompress(out.read_bytes()).decode())
    assert again == (header, pages, footer)
    assert [e[1] for e in read_index(tmp_path / "w-multistream-index.txt")] == list(range(1, 8))


def test_the_files_command_with_workers_gives_the_same_index(tmp_path, corpus):
    from click.testing import CliRunner
    from simtools_cli.main import main

    rows = [{"text": f"{text} number {i}", "label": label}
            for i in range(25) for label, text in corpus.items()]
    table = tmp_path / "docs.jsonl"
    table.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    for encoder in ("tfidf", "bm25"):
        outs = []
        for workers in ("1", "3"):
            out = tmp_path / f"{encoder}-{workers}"
            result = CliRunner().invoke(main, ["index", "files", str(table), "--out", str(out),
                                               "--encoder", encoder, "--workers", workers,
                                               "--shard-size", "40"])
            assert result.exit_code == 0, result.output
            outs.append(out)
        same_index(*outs)
        assert Index.load(outs[0]).n_shards == 3


def test_the_dump_command_takes_the_index_file(tmp_path):
    from click.testing import CliRunner
    from simtools_cli.main import main

    dump = synthetic(tmp_path, numbered(9))
    renamed = dump.rename(tmp_path / "renamed.xml.bz2")
    index = tmp_path / "test-pages-articles-multistream-index.txt.bz2"
    result = CliRunner().invoke(main, ["index", "dump", str(renamed), "--out",
                                       str(tmp_path / "i"), "--index-file", str(index),
                                       "--workers", "2", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(next(line for line in result.output.splitlines()
                              if line.startswith("{")))
    assert summary["reader"] == "multistream" and summary["articles_indexed"] == 9


def test_the_ray_engine_without_ray_says_what_to_install_and_touches_nothing(tmp_path,
                                                                             monkeypatch):
    import simtools.engines.ray_build  # noqa: F401  (importable without Ray)
    import simtools.index.build_ray  # noqa: F401

    for name in ("ray", "ray.data"):  # as if Ray were not installed
        monkeypatch.setitem(sys.modules, name, None)
    dump = synthetic(tmp_path, numbered(9))
    with pytest.raises(ImportError, match=r"pip install 'simtools\[ray\]'"):
        build_dump_index(dump, tmp_path / "index", engine="ray")
    assert not (tmp_path / "index").exists()
    plain = tmp_path / "plain.xml.bz2"
    plain.write_bytes(bz2.compress(dump_xml(numbered(3)).encode("utf-8")))
    with pytest.raises(InputError, match="single-stream dump"):
        build_dump_index(plain, tmp_path / "index", engine="ray")
