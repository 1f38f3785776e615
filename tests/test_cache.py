"""The on-disk teacher cache: round trip, keys, atomic files, recovery from corruption."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from simtools.distill.cache import TeacherCache, default_cache_dir, text_key


class Counting:
    """A fake slow model: one row per text, and a record of what it was asked."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


def store_folder(cache: TeacherCache, model_id: str):
    return cache._store(model_id).folder


def test_round_trip_computes_each_text_once(tmp_path) -> None:
    model = Counting()
    cache = TeacherCache(tmp_path)
    texts = ["a cat", "banana", "a cat", ""]
    first = cache.get_or_compute("m", texts, model)
    assert first.dtype == np.float32 and first.shape == (4, 3) and first.flags.c_contiguous
    np.testing.assert_array_equal(first, model(texts))
    assert model.calls[0] == ["a cat", "banana", ""]  # duplicates computed once
    again = TeacherCache(tmp_path).get_or_compute("m", ["banana", "new", "a cat"], model)
    assert model.calls[-1] == ["new"]
    np.testing.assert_array_equal(again, model(["banana", "new", "a cat"]))
    assert cache.count("m") == 4


def test_keys_depend_on_model_and_text(tmp_path) -> None:
    assert text_key("m1", "x") != text_key("m2", "x")
    assert text_key("m1", "x") != text_key("m1", "y")
    assert text_key("m", "ab") != text_key("ma", "b")
    cache = TeacherCache(tmp_path)
    cache.put("m1", ["x"], np.ones((1, 3), np.float32))
    rows, found = cache.get("m2", ["x"])
    assert rows is None and not found.any()
    rows, found = cache.get("m1", ["x", "y"])
    assert found.tolist() == [True, False]
    np.testing.assert_array_equal(rows, [[1, 1, 1], [0, 0, 0]])


def test_put_keeps_the_first_row_of_a_key(tmp_path) -> None:
    cache = TeacherCache(tmp_path)
    cache.put("m", ["x"], np.ones((1, 2), np.float32))
    cache.put("m", ["x", "y"], np.full((2, 2), 5, np.float32))
    rows, _ = cache.get("m", ["x", "y"])
    np.testing.assert_array_equal(rows, [[1, 1], [5, 5]])


def test_lookup_by_key_is_get_by_text(tmp_path) -> None:
    cache = TeacherCache(tmp_path)
    assert cache.lookup("m", [])[0] is None  # nothing stored yet
    cache.put("m", ["a", "b"], np.eye(2, dtype=np.float32))
    rows, found = cache.lookup("m", [text_key("m", "b"), text_key("m", "zzz")])
    assert found.tolist() == [True, False]
    np.testing.assert_array_equal(rows, cache.get("m", ["b", "zzz"])[0])
    np.testing.assert_array_equal(rows[0], [0.0, 1.0])


def test_chunks_are_stored_as_they_finish(tmp_path) -> None:
    cache = TeacherCache(tmp_path)
    seen: list[tuple[int, int]] = []

    def failing(texts: list[str]) -> np.ndarray:
        if "boom" in texts:
            raise RuntimeError("interrupted")
        return np.zeros((len(texts), 2), np.float32)

    with pytest.raises(RuntimeError):
        cache.get_or_compute("m", ["a", "b", "boom"], failing, chunk_size=2,
                             progress=lambda d, t: seen.append((d, t)))
    assert seen == [(2, 3)]
    assert TeacherCache(tmp_path).get("m", ["a", "b"])[1].all()


def test_files_are_npy_and_json_only(tmp_path) -> None:
    cache = TeacherCache(tmp_path)
    cache.put("model/with:odd chars", ["x", "y"], np.eye(2, dtype=np.float32))
    folder = store_folder(cache, "model/with:odd chars")
    names = sorted(p.name for p in folder.iterdir())
    assert "index.json" in names and not any(n.endswith(".tmp") for n in names)
    (shard,) = [n for n in names if n.endswith(".npy")]
    assert np.load(folder / shard, allow_pickle=False).dtype == np.float32
    index = json.loads((folder / "index.json").read_text())
    assert index["model_id"] == "model/with:odd chars" and index["dim"] == 2


def test_corrupted_index_is_rebuilt_from_the_shards(tmp_path, caplog) -> None:
    cache = TeacherCache(tmp_path)
    cache.put("m", ["x", "y"], np.arange(4, dtype=np.float32).reshape(2, 2))
    folder = store_folder(cache, "m")
    (folder / "index.json").write_text('{"format_version": 1, "keys": {trunc')
    with caplog.at_level(logging.WARNING):
        rows, found = TeacherCache(tmp_path).get("m", ["y", "x"])
    assert "rebuilding" in caplog.text
    assert found.all()
    np.testing.assert_array_equal(rows, [[2, 3], [0, 1]])


def test_truncated_shard_is_recomputed(tmp_path, caplog) -> None:
    model = Counting()
    cache = TeacherCache(tmp_path)
    cache.get_or_compute("m", ["abc", "a"], model)
    folder = store_folder(cache, "m")
    (shard,) = folder.glob("*.npy")
    shard.write_bytes(shard.read_bytes()[:-5])
    with caplog.at_level(logging.WARNING):
        rows = TeacherCache(tmp_path).get_or_compute("m", ["abc", "a"], model)
    assert "unreadable" in caplog.text
    assert model.calls[-1] == ["abc", "a"]
    np.testing.assert_array_equal(rows, model(["abc", "a"]))
    rows, found = TeacherCache(tmp_path).get("m", ["abc", "a"])  # stored again, readable
    assert found.all()
    np.testing.assert_array_equal(rows, model(["abc", "a"]))


def test_index_of_another_model_is_not_trusted(tmp_path, caplog) -> None:
    cache = TeacherCache(tmp_path)
    cache.put("m", ["x"], np.ones((1, 2), np.float32))
    folder = store_folder(cache, "m")
    index = json.loads((folder / "index.json").read_text())
    index["model_id"] = "other"
    (folder / "index.json").write_text(json.dumps(index))
    with caplog.at_level(logging.WARNING):
        assert TeacherCache(tmp_path).get("m", ["x"])[1].all()  # rebuilt from the key files


def test_dimension_change_is_refused(tmp_path) -> None:
    cache = TeacherCache(tmp_path)
    cache.put("m", ["x"], np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="holds 2-d rows, got 3-d"):
        cache.put("m", ["y"], np.ones((1, 3), np.float32))


@pytest.mark.parametrize(("call", "match"), [
    (lambda c: c.put("m", ["x", "y"], np.ones((1, 2))), r"rows must have shape \(2, dim\)"),
    (lambda c: c.get("", ["x"]), "model_id must be a non-empty str"),
    (lambda c: c.get_or_compute("m", ["x"], lambda t: np.ones((2, 2))), "compute returned shape"),
    (lambda c: c.get_or_compute("m", ["x"], lambda t: t, chunk_size=0), "chunk_size"),
])
def test_bad_calls_are_refused(tmp_path, call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call(TeacherCache(tmp_path))


def test_default_dir_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SIMTOOLS_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "teacher"  # the folder of every cache
    assert TeacherCache().root == tmp_path / "c" / "teacher"
    monkeypatch.delenv("SIMTOOLS_CACHE_DIR")
    assert default_cache_dir().parts[-3:] == (".cache", "simtools", "teacher")


def _filled(tmp_path, model: Counting) -> TeacherCache:
    """A store of six texts written by three appends: three shards."""
    cache = TeacherCache(tmp_path)
    for part in (["a", "bb"], ["ccc", "a d"], ["eeeee", "aaaa"]):
        cache.get_or_compute("m", part, model)
    return cache


def _shard_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".npy", ".keys.json")))


TEXTS = ["a", "bb", "ccc", "a d", "eeeee", "aaaa"]


def _assert_all_cached(tmp_path, model: Counting) -> None:
    """A new process finds every text of TEXTS, with the rows the model gives."""
    rows, found = TeacherCache(tmp_path).get("m", TEXTS)
    assert found.all()
    np.testing.assert_array_equal(rows, model(TEXTS))


def test_compact_keeps_every_row_in_one_shard(tmp_path) -> None:
    model = Counting()
    cache = _filled(tmp_path, model)
    folder = store_folder(cache, "m")
    assert len(_shard_files(folder)) == 6
    ((before, after),) = cache.compact([folder.name])
    assert (before.shards, before.rows) == (3, 6) and (after.shards, after.rows) == (1, 6)
    assert len(_shard_files(folder)) == 2
    for fresh in (cache, TeacherCache(tmp_path)):  # the open store and a new process
        rows, found = fresh.get("m", TEXTS[::-1])
        assert found.all()
        np.testing.assert_array_equal(rows, model(TEXTS[::-1]))
    calls = len(model.calls)
    cache.get_or_compute("m", ["new", "a"], model)  # appends after a compaction still work
    assert model.calls[calls:] == [["new"]]
    assert TeacherCache(tmp_path).count("m") == 7
    ((again, _),) = cache.compact([folder.name])
    assert again.shards == 2 and len(_shard_files(folder)) == 2


def test_compact_removes_stray_files_and_skips_a_compact_store(tmp_path) -> None:
    model = Counting()
    cache = TeacherCache(tmp_path)
    cache.get_or_compute("m", TEXTS, model)
    folder = store_folder(cache, "m")
    files = _shard_files(folder)
    cache.compact([folder.name])
    assert _shard_files(folder) == files  # one shard already: nothing rewritten
    # what a killed compaction or write leaves: an unindexed shard and a temporary file
    np.save(folder / "00009-deadbeef.npy", np.ones((1, 3), np.float32))
    (folder / "00009-deadbeef.keys.json").write_text('["k"]')
    (folder / ".index.json.x1y2.tmp").write_text("partial")
    cache.compact([folder.name])
    assert len(_shard_files(folder)) == 2 and not list(folder.glob(".*.tmp"))
    assert "00009-deadbeef.npy" not in _shard_files(folder)
    _assert_all_cached(tmp_path, model)


def test_a_crash_during_compaction_loses_nothing(tmp_path, monkeypatch) -> None:
    import simtools.distill.cache_store as cache_module

    model = Counting()
    cache = _filled(tmp_path, model)
    folder = store_folder(cache, "m")
    real = cache_module._atomic_write_bytes

    def dies_on_the_index(path, data):
        if path.name == "index.json":
            raise KeyboardInterrupt("killed")
        real(path, data)

    monkeypatch.setattr(cache_module, "_atomic_write_bytes", dies_on_the_index)
    with pytest.raises(KeyboardInterrupt):
        cache.compact([folder.name])
    monkeypatch.undo()
    assert len(_shard_files(folder)) == 8  # the old shards, and the new one not yet indexed
    _assert_all_cached(tmp_path, model)
    TeacherCache(tmp_path).compact([folder.name])  # a second run finishes the job
    assert len(_shard_files(folder)) == 2
    assert TeacherCache(tmp_path).get("m", TEXTS)[1].all()


def test_a_reader_with_the_old_index_finds_the_compacted_rows(tmp_path) -> None:
    model = Counting()
    writer = _filled(tmp_path, model)
    reader = TeacherCache(tmp_path)
    assert reader.count("m") == 6  # the reader holds the index of three shards, none mapped
    writer.compact([store_folder(writer, "m").name])
    store = reader._store("m")
    real_reload, calls = store.reload, []

    def late_reload(**kwargs):  # the first reload sees the old index, as if the compaction
        calls.append(kwargs)    # ran just after it; later ones read the disk
        if len(calls) > 1:
            real_reload(**kwargs)

    store.reload = late_reload
    rows, found = store.lookup([text_key("m", t) for t in TEXTS])
    assert len(calls) == 2  # looked again after the index changed under it
    assert found.all()
    np.testing.assert_array_equal(rows, model(TEXTS))


def test_compact_drops_only_unreadable_rows(tmp_path, caplog) -> None:
    model = Counting()
    cache = _filled(tmp_path, model)
    folder = store_folder(cache, "m")
    index = json.loads((folder / "index.json").read_text())
    broken = index["keys"][text_key("m", "ccc")][0]
    (folder / f"{broken}.npy").write_bytes(b"not numpy")
    with caplog.at_level(logging.WARNING):
        ((before, after),) = TeacherCache(tmp_path).compact([folder.name])
    assert "unreadable" in caplog.text
    assert (before.rows, after.rows, after.shards) == (6, 4, 1)
    rows, found = TeacherCache(tmp_path).get("m", TEXTS)
    assert found.tolist() == [True, True, False, False, True, True]


def test_compact_refuses_unknown_names_before_changing_anything(tmp_path) -> None:
    cache = _filled(tmp_path, Counting())
    folder = store_folder(cache, "m")
    with pytest.raises(ValueError, match="nope: not a store"):
        cache.compact([folder.name, "nope"])
    assert len(_shard_files(folder)) == 6
    with pytest.raises(ValueError, match="not a store"):
        cache.compact([f"../{tmp_path.name}/{folder.name}"])


def test_select_by_name_fitted_and_age(tmp_path) -> None:
    import os

    import pytest

    from simtools.distill.cache import ENSEMBLE_CACHE_PREFIX
    from simtools.errors import InputError

    cache = TeacherCache(tmp_path)
    model = Counting()
    cache.get_or_compute("plain", ["a"], model)
    cache.get_or_compute(f"{ENSEMBLE_CACHE_PREFIX}x", ["a"], model)
    names = {s.model_id: s.name for s in cache.stores()}
    assert [s.model_id for s in cache.select(fitted=True)] == [f"{ENSEMBLE_CACHE_PREFIX}x"]
    assert [s.name for s in cache.select([names["plain"]])] == [names["plain"]]
    assert len(cache.select(everything=True)) == 2
    old = tmp_path / names["plain"]
    for f in old.iterdir():
        os.utime(f, (0, 0))
    assert [s.name for s in cache.select(everything=True, older_than_days=1)] == [names["plain"]]
    with pytest.raises(InputError, match="nope: not a store under"):
        cache.select(["nope"])
