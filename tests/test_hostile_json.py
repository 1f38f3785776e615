"""JSON nested ~100k deep, in every JSON file simtools reads, is a clean error or ignored."""

from __future__ import annotations

import numpy as np
import pytest

from simtools.errors import InputError

DEEP = "[" * 100_000 + "]" * 100_000


def test_a_deep_jsonl_row_is_an_input_error(tmp_path):
    from simtools.data import read_documents

    path = tmp_path / "rows.jsonl"
    path.write_text('{"text": "fine"}\n' + DEEP + "\n")
    with pytest.raises(InputError, match=r"rows.jsonl:2 is JSON nested too deeply"):
        list(read_documents(path))


def test_a_deep_wikipedia_cache_file_is_ignored(tmp_path):
    from simtools.wiki.api import PageCache

    cache = PageCache(tmp_path, "http://127.0.0.1/w/api.php")
    path = cache.path_for("Tennis")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEEP)
    assert cache.get("Tennis") is None  # unreadable: fetched again, never a crash


def test_a_deep_teacher_cache_index_is_rebuilt(tmp_path):
    from simtools.distill.cache import TeacherCache

    def model(texts):
        return np.ones((len(texts), 3), np.float32)

    cache = TeacherCache(tmp_path)
    cache.get_or_compute("m", ["a", "b"], model)
    (index,) = tmp_path.rglob("index.json")
    index.write_text(DEEP)
    again = TeacherCache(tmp_path).get_or_compute("m", ["a", "b"], model)
    assert again.shape == (2, 3)
    assert [store.rows for store in TeacherCache(tmp_path).stores()] in ([0], [2])
