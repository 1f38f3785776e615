"""Streamed builds into shards: the one builder, checkpoints of the open shard, resuming."""

from __future__ import annotations

import bz2
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from simtools.data import Document
from simtools.errors import FolderInUseError, InputError
from simtools.folders import FolderWriter
from simtools.index import Index
from simtools.index.build import build_index
from simtools.index.builder import IndexBuilder
from simtools.index.sharded import ShardedIndex
from simtools.index.shards_store import is_sharded, read_manifest, shard_dirs_in
from tests.fakewiki import dump_xml, page_xml

pytest.importorskip("mwparserfromhell")

from simtools.wiki.build import PROGRESS_NAME, build_dump_index  # noqa: E402


def docs(n: int) -> list[Document]:
    return [Document(f"word{i % 7} text {i} about topic{i % 3}", f"t{i}", f"L{i % 2}")
            for i in range(n)]


def stream(out: Path, documents: list[Document], *, shard_size: int, every: int | None = None,
           encoder: str = "hashing") -> IndexBuilder:
    with FolderWriter(out, kind="index") as writer:
        builder = IndexBuilder(Index(encoder), batch_size=3, writer=writer,
                               checkpoint_every=every, shard_size=shard_size)
        builder.extend(documents).finish()
        builder.checkpoint()
    return builder


def test_a_streamed_build_equals_one_built_in_memory(tmp_path):
    builder = stream(tmp_path / "idx", docs(10), shard_size=4)
    assert builder.count == 10 and is_sharded(tmp_path / "idx")
    manifest = read_manifest(tmp_path / "idx")
    assert [s["count"] for s in manifest["shards"]] == [4, 4, 2]
    assert manifest["encoder"]["name"].startswith("encoder-") and manifest["next_id"] == 10
    loaded = Index.load(tmp_path / "idx")
    reference = build_index(docs(10), encoder="hashing")
    assert loaded.ids == reference.ids == [str(i) for i in range(10)]
    assert loaded.labels == reference.labels
    assert (loaded.stored_vectors() != reference.stored_vectors()).nnz == 0
    assert loaded.search(["word3 topic1"], k=4) == reference.search(["word3 topic1"], k=4)
    assert loaded.add_texts(["one more"]) == ["10"]


def test_a_build_within_one_shard_is_an_ordinary_folder(tmp_path):
    stream(tmp_path / "idx", docs(10), shard_size=10)
    assert not is_sharded(tmp_path / "idx")
    assert type(Index.load(tmp_path / "idx")) is Index


def test_a_checkpoint_rewrites_only_the_open_shard(tmp_path, monkeypatch):
    from simtools.index import shards_store

    written = []
    original = shards_store.ShardStore.write_shard

    def counting(self, number, write, count):
        written.append((number, count))
        return original(self, number, write, count)

    monkeypatch.setattr(shards_store.ShardStore, "write_shard", counting)
    stream(tmp_path / "idx", docs(20), shard_size=6, every=3)
    # each full shard once when it closes; the open one at checkpoints, never a full one again
    full = [n for n, count in written if count == 6]
    assert sorted(full) == [0, 1, 2] and len(full) == len(set(full))
    assert len(shard_dirs_in(tmp_path / "idx")) == 4


def test_the_vocabulary_is_fitted_once_for_every_shard(tmp_path):
    stream(tmp_path / "idx", docs(12), shard_size=5, encoder="tfidf")
    manifest = read_manifest(tmp_path / "idx")
    assert len(manifest["shards"]) == 3 and manifest["encoder"]["type"] == "count"
    loaded = Index.load(tmp_path / "idx")
    reference = build_index(docs(12), encoder="tfidf")
    assert [n.id for n in loaded.search(["word2 topic2"], k=5)[0]] == \
        [n.id for n in reference.search(["word2 topic2"], k=5)[0]]


def test_duplicate_ids_across_shards_are_refused(tmp_path):
    documents = [Document(f"text {i}", f"t{i}", id=str(i % 5)) for i in range(8)]
    with pytest.raises(InputError, match="id '0' is already in the index"):
        stream(tmp_path / "idx", documents, shard_size=3)


def test_shard_size_needs_a_writer():
    with pytest.raises(InputError, match="needs a writer"):
        IndexBuilder(Index("hashing"), shard_size=3)


def test_build_index_in_memory_shards(tmp_path):
    index = build_index(docs(10), encoder="count", shard_size=3)
    assert isinstance(index, ShardedIndex) and index.n_shards == 4
    assert index.ids == build_index(docs(10), encoder="count").ids


def test_the_wikipedia_pages_builder_moved(corpus):
    from simtools.wiki import build as wiki_build

    class Page:
        def __init__(self, title: str, text: str, pageid: int) -> None:
            self.title, self.text, self.pageid = title, text, pageid

        def metadata(self):
            return {"source": "wikipedia", "pageid": self.pageid}

    pages = [Page(title, text, i) for i, (title, text) in enumerate(corpus.items(), 1)]
    with pytest.warns(DeprecationWarning, match="use simtools.index.build.build_index"):
        old = wiki_build.build_index(pages, encoder="count")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = build_index(wiki_build.page_documents(pages), encoder="count")
    assert old.ids == new.ids == ["1", "2", "3", "4"] and old.labels == new.labels


# -- dumps --------------------------------------------------------------------------------------
def write_dump(path: Path, n: int = 30) -> Path:
    pages = [page_xml(f"Page {i}", i, f"Words about subject {i} and topic {i % 3}.")
             for i in range(1, n + 1)]
    path.write_bytes(bz2.compress(dump_xml(pages).encode("utf-8")))
    return path


def test_a_dump_build_in_shards_resumes_to_the_same_index(tmp_path):
    dump = write_dump(tmp_path / "d.xml.bz2")
    whole = build_dump_index(dump, tmp_path / "whole", batch_size=4, shard_size=7)
    assert whole.shards == 5 and whole.articles_indexed == 30
    seen = []

    def interrupt_at_17(n: int) -> None:
        seen.append(n)
        if len(seen) == 17:
            raise KeyboardInterrupt

    out = tmp_path / "index"
    with pytest.raises(KeyboardInterrupt):
        build_dump_index(dump, out, batch_size=4, checkpoint_every=5, shard_size=7,
                         on_article=interrupt_at_17)
    manifest = read_manifest(out)
    progress = manifest["progress"]
    assert progress["name"] == PROGRESS_NAME and not progress["record"]["complete"]
    done = manifest["count"]
    assert 7 <= done < 30
    with pytest.raises(InputError, match="built with shard_size 7, not 8"):
        build_dump_index(dump, out, shard_size=8, resume=True)
    report = build_dump_index(dump, out, batch_size=4, checkpoint_every=5, shard_size=7,
                              resume=True)
    assert report.resumed_after_pageid == progress["record"]["last_pageid"]
    assert report.articles_this_run == 30 - done and report.complete
    resumed, reference = Index.load(out), Index.load(tmp_path / "whole")
    assert resumed.ids == reference.ids == [str(i) for i in range(1, 31)]
    assert (resumed.stored_vectors() != reference.stored_vectors()).nnz == 0
    again = build_dump_index(dump, out, shard_size=7, resume=True)
    assert again.articles_this_run == 0 and again.complete


def test_a_dump_build_below_one_shard_is_unchanged(tmp_path):
    from folder_tools import live

    dump = write_dump(tmp_path / "d.xml.bz2", 12)
    report = build_dump_index(dump, tmp_path / "index", batch_size=4)
    assert report.shards == 1 and not is_sharded(tmp_path / "index")
    progress = json.loads((live(tmp_path / "index") / PROGRESS_NAME).read_text())
    assert progress["complete"] and progress["last_pageid"] == 12


def test_a_second_build_into_the_same_folder_is_refused(tmp_path):
    dump = write_dump(tmp_path / "d.xml.bz2", 12)
    with FolderWriter(tmp_path / "index", kind="index"), \
            pytest.raises(FolderInUseError, match="being saved by another process"):
        build_dump_index(dump, tmp_path / "index", shard_size=5)


def test_dump_shards_search_like_one_index(tmp_path):
    dump = write_dump(tmp_path / "d.xml.bz2")
    build_dump_index(dump, tmp_path / "one", encoder="tfidf", fit_pages=30)
    build_dump_index(dump, tmp_path / "many", encoder="tfidf", fit_pages=30, shard_size=4)
    one, many = Index.load(tmp_path / "one"), Index.load(tmp_path / "many")
    assert many.n_shards == 8
    queries = ["subject 12 and topic 0", "words about topic 2"]
    for a, b in zip(one.search(queries, k=6), many.search(queries, k=6)):
        assert [n.id for n in a] == [n.id for n in b]
        np.testing.assert_allclose([n.score for n in a], [n.score for n in b], rtol=1e-5)


def test_a_small_rebuild_over_a_sharded_dump_index_leaves_no_shards(tmp_path):
    dump = write_dump(tmp_path / "d.xml.bz2")
    build_dump_index(dump, tmp_path / "index", encoder="tfidf", fit_pages=30, shard_size=7)
    assert len(shard_dirs_in(tmp_path / "index")) == 5
    small = write_dump(tmp_path / "small.xml.bz2", 6)
    report = build_dump_index(small, tmp_path / "index", encoder="tfidf", fit_pages=30)
    assert report.shards == 1 and not is_sharded(tmp_path / "index")
    assert shard_dirs_in(tmp_path / "index") == []
    assert Index.load(tmp_path / "index").ids == [str(i) for i in range(1, 7)]


def test_the_encoder_is_fitted_on_the_first_fit_first_documents_exactly():
    documents = [Document(f"alpha{i} beta{i}", f"t{i}") for i in range(12)]
    builder = IndexBuilder(Index("count"), fit_first=3, batch_size=10, on_skip=lambda d: None)
    builder.extend(documents).finish()
    assert builder.encoder.dim == 6  # alpha0..2, beta0..2: the later words are unknown
    assert builder.skipped == 9 and len(builder.index) == 3
