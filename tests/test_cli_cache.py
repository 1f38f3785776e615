"""``simtools cache info`` / ``clear`` / ``compact`` and the TeacherCache calls under them."""

from __future__ import annotations

import json
import logging
import os
import time

import numpy as np
import pytest
from click.testing import CliRunner
from simtools_cli.main import main

from simtools.distill.cache import TeacherCache, default_cache_dir
from simtools.distill.teacher import ENSEMBLE_CACHE_PREFIX

ENCODER = "encoder:v1"
FITTED = f"{ENSEMBLE_CACHE_PREFIX}abc123"


@pytest.fixture
def cache(tmp_path):
    cache = TeacherCache(tmp_path / "teacher")
    cache.put(ENCODER, ["a", "b", "c"], np.arange(12, dtype=np.float32).reshape(3, 4))
    cache.put(ENCODER, ["d"], np.ones((1, 4), dtype=np.float32))  # a second shard
    cache.put(FITTED, ["a"], np.zeros((1, 2), dtype=np.float32))
    (cache.root / "notes").mkdir()  # not a store: never listed, never removed
    (cache.root / "notes" / "todo.txt").write_text("keep me")
    return cache


def _run(cache, *args, input=None):
    # --cache-dir names the folder of every cache; the teacher cache is its teacher/.
    return CliRunner().invoke(main, ["cache", *args, "--cache-dir", str(cache.root.parent)],
                              input=input)


def _names(cache):
    return {s.model_id: s.name for s in cache.stores()}


def test_stores_lists_what_each_store_holds(cache):
    stores = {s.model_id: s for s in cache.stores()}
    assert set(stores) == {ENCODER, FITTED}
    assert (stores[ENCODER].rows, stores[ENCODER].dim, stores[ENCODER].shards) == (4, 4, 2)
    assert (stores[FITTED].rows, stores[FITTED].dim) == (1, 2)
    assert stores[ENCODER].bytes > stores[FITTED].bytes > 0


def test_info_json(cache):
    result = _run(cache, "info", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    teacher = out["teacher"]
    assert out["root"] == str(cache.root.parent) and teacher["root"] == str(cache.root)
    assert {s["model_id"] for s in teacher["stores"]} == {ENCODER, FITTED}
    assert teacher["bytes"] == sum(s["bytes"] for s in teacher["stores"])
    assert out["wikipedia"] == {"root": str(cache.root.parent / "wikipedia"), "hosts": [],
                                "pages": 0, "bytes": 0}
    text = _run(cache, "info").output
    assert "2 store(s)" in text and "4 rows x 4" in text and "notes" not in text
    assert "wikipedia page cache" in text and "no pages" in text


def test_info_lists_the_wikipedia_page_cache(cache):
    pages = cache.root.parent / "wikipedia" / "en.wikipedia.org"
    pages.mkdir(parents=True)
    for name in ("Tennis-0a1b", "Chess-2c3d"):
        (pages / f"{name}.json").write_text('{"title": "x"}')
    (pages.parent / "empty.host").mkdir()  # no pages: not listed
    out = json.loads(_run(cache, "info", "--json").output)["wikipedia"]
    assert [(h["host"], h["pages"]) for h in out["hosts"]] == [("en.wikipedia.org", 2)]
    assert out["pages"] == 2 and out["bytes"] == 28
    text = _run(cache, "info").output
    assert "wikipedia page cache" in text and "2 page(s)" in text and "en.wikipedia.org" in text


def test_one_environment_variable_names_the_folder_of_every_cache(tmp_path, monkeypatch,
                                                                   caplog):
    from simtools.wiki.api import default_cache_dir as wiki_cache_dir

    monkeypatch.setenv("SIMTOOLS_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "teacher"
    assert wiki_cache_dir() == tmp_path / "c" / "wikipedia"
    out = json.loads(CliRunner().invoke(main, ["cache", "info", "--json"]).output)
    assert out["teacher"]["root"] == str(tmp_path / "c" / "teacher")
    assert out["wikipedia"]["root"] == str(tmp_path / "c" / "wikipedia")
    # The older meaning (the teacher cache itself) is noticed and explained.
    TeacherCache(tmp_path / "c").put(ENCODER, ["a"], np.ones((1, 2), dtype=np.float32))
    with caplog.at_level(logging.WARNING, logger="simtools.distill.cache"):
        default_cache_dir()
    assert "holds teacher cache stores directly" in caplog.text
    assert str(tmp_path / "c" / "teacher") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="simtools.distill.cache"):
        default_cache_dir()
    assert caplog.text == ""  # once per process


@pytest.mark.parametrize("command", ["info", "compact", "clear"])
def test_help_has_examples(command):
    result = CliRunner().invoke(main, ["cache", command, "--help"])
    assert result.exit_code == 0
    assert "Examples:\n" in result.output
    assert f"\n    simtools cache {command}" in result.output  # \b kept the lines apart


def test_clear_fitted_keeps_the_embeddings(cache):
    fitted_name = _names(cache)[FITTED]
    result = _run(cache, "clear", "--fitted", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["removed"] == [fitted_name]
    fresh = TeacherCache(cache.root)
    assert set(_names(fresh)) == {ENCODER}
    rows, found = fresh.get(ENCODER, ["c", "d"])
    assert found.all() and rows.tolist() == [[8, 9, 10, 11], [1, 1, 1, 1]]
    assert (cache.root / "notes" / "todo.txt").read_text() == "keep me"


def test_clear_by_name_dry_run_and_confirmation(cache):
    fitted = _names(cache)[FITTED]
    dry = _run(cache, "clear", fitted, "--dry-run")
    assert dry.exit_code == 0 and "would remove: 1 store(s)" in dry.output
    refused = _run(cache, "clear", fitted, input="n\n")
    assert refused.exit_code == 1  # aborted at the prompt
    assert set(_names(cache)) == {ENCODER, FITTED}
    confirmed = _run(cache, "clear", fitted, input="y\n")
    assert confirmed.exit_code == 0 and "removed 1 store(s)" in confirmed.output
    assert set(_names(cache)) == {ENCODER}


def test_older_than_spares_recent_stores(cache):
    old = cache.root / _names(cache)[ENCODER]
    past = time.time() - 10 * 86400
    for path in old.iterdir():
        os.utime(path, (past, past))
    result = _run(cache, "clear", "--all", "--older-than", "5", "--yes")
    assert result.exit_code == 0 and "removed 1 store(s)" in result.output
    assert set(_names(cache)) == {FITTED}


def test_clear_errors(cache):
    nothing = _run(cache, "clear")
    assert nothing.exit_code == 2 and "say what to clear" in nothing.output
    unknown = _run(cache, "clear", "notes", "--yes")
    assert unknown.exit_code == 2 and "notes: not a store" in unknown.output
    assert (cache.root / "notes" / "todo.txt").exists()
    with pytest.raises(ValueError, match="not a store"):
        cache.remove([_names(cache)[FITTED], "notes"])
    assert set(_names(cache)) == {ENCODER, FITTED}  # nothing removed before the error


def test_a_removed_store_is_computed_again(cache):
    cache.remove([_names(cache)[ENCODER]])
    calls = []

    def compute(texts):
        calls.append(list(texts))
        return np.full((len(texts), 4), 7, dtype=np.float32)

    rows = cache.get_or_compute(ENCODER, ["a"], compute)
    assert calls == [["a"]] and rows.tolist() == [[7, 7, 7, 7]]


def test_empty_or_missing_root(tmp_path):
    result = CliRunner().invoke(main, ["cache", "info", "--cache-dir", str(tmp_path / "none")])
    assert result.exit_code == 0 and "no stores" in result.output and "no pages" in result.output
    assert TeacherCache(tmp_path / "none").stores() == []


def test_compact_merges_shards_and_keeps_rows(cache):
    encoder = _names(cache)[ENCODER]
    dry = _run(cache, "compact", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would compact: 1 store(s), 2 shard(s) -> 1" in dry.output and encoder in dry.output
    assert {s.name: s.shards for s in cache.stores()}[encoder] == 2  # the dry run changed nothing
    result = _run(cache, "compact", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [(c["name"], c["rows"], c["shards_before"], c["shards_after"])
            for c in out["compacted"]] == [(encoder, 4, 2, 1)]
    rows, found = TeacherCache(cache.root).get(ENCODER, ["a", "b", "c", "d"])
    assert found.all()
    assert rows.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [1, 1, 1, 1]]
    again = _run(cache, "compact")
    assert again.exit_code == 0 and "nothing to compact" in again.output
    assert (cache.root / "notes" / "todo.txt").read_text() == "keep me"


def test_compact_by_name_and_errors(cache):
    fitted = _names(cache)[FITTED]
    named = _run(cache, "compact", fitted)
    assert named.exit_code == 0, named.output
    assert "compacted 1 store(s): 1 shard(s) -> 1" in named.output
    unknown = _run(cache, "compact", "notes")
    assert unknown.exit_code == 2 and "notes: not a store" in unknown.output
    assert {s.model_id: s.shards for s in cache.stores()}[ENCODER] == 2


def test_compact_skips_a_store_whose_index_cannot_be_read(cache):
    encoder = _names(cache)[ENCODER]
    (cache.root / encoder / "index.json").write_text("{trunc")
    result = _run(cache, "compact", encoder)
    assert result.exit_code == 0, result.output
    assert "skipped, its index cannot be read" in result.output
    assert TeacherCache(cache.root).get(ENCODER, ["a", "d"])[1].all()  # rebuilt on use
