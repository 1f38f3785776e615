"""``benchmarks/bench_cache.py``: the store it builds and the lookups it times."""

from __future__ import annotations

import shutil

import numpy as np

from benchmarks import bench_cache
from simtools.distill.cache import TeacherCache, text_key


def test_sharded_and_compacted_stores_return_the_same_rows(tmp_path) -> None:
    sharded, compacted = tmp_path / "sharded", tmp_path / "compacted"
    texts = bench_cache.build_store(sharded, rows=300, dim=8, appends=7)
    (info,) = TeacherCache(sharded).stores()
    assert (info.rows, info.dim, info.shards) == (300, 8, 7)
    shutil.copytree(sharded, compacted)
    ((_, after),) = TeacherCache(compacted).compact([info.name])
    assert (after.rows, after.shards) == (300, 1)
    keys = [text_key(bench_cache.MODEL, texts[i]) for i in (299, 0, 150)]
    cold, warm, rows = bench_cache.lookup_times(sharded, keys)
    assert cold > 0 and warm > 0 and rows.shape == (3, 8)
    np.testing.assert_array_equal(bench_cache.lookup_times(compacted, keys)[2], rows)
