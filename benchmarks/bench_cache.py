"""The teacher cache: lookups in a store of many shards against the same store compacted.

Builds one store the way distillation fills it, one shard per append (default: 213,000 rows of
384 float32 in 284 appends, the size of this machine's MiniLM store), copies it, compacts the
copy with ``TeacherCache.compact`` (timed on fresh copies), and times ``lookup`` of the same
random 20,000 keys in both, interleaved in one process:

* ``cold``: the first lookup after opening the store (index read, no shard mapped yet);
* ``warm``: the same lookup again, its shards mapped.

Every lookup is checked to return the same rows in both layouts.

    python benchmarks/bench_cache.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from simtools.distill.cache import TeacherCache, text_key  # noqa: E402

MODEL = "bench:encoder"


def build_store(root: Path, rows: int, dim: int, appends: int) -> list[str]:
    """A store of ``rows`` random rows written in ``appends`` puts; returns its texts."""
    rng = np.random.default_rng(0)
    texts = [f"text {i}" for i in range(rows)]
    cache = TeacherCache(root)
    for part in np.array_split(np.arange(rows), appends):
        cache.put(MODEL, [texts[i] for i in part],
                  rng.standard_normal((len(part), dim)).astype(np.float32))
    return texts


def lookup_times(root: Path, keys: list[str]) -> tuple[float, float, np.ndarray]:
    """Seconds of the first and the second lookup of ``keys`` in a freshly opened store."""
    cache = TeacherCache(root)
    cache.lookup(MODEL, [])  # reads the index, maps no shard: not timed
    start = time.perf_counter()
    rows, found = cache.lookup(MODEL, keys)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    cache.lookup(MODEL, keys)
    warm = time.perf_counter() - start
    if rows is None or not found.all():
        raise RuntimeError(f"{root}: {int((~found).sum())} keys not found")
    return cold, warm, rows


def main() -> None:
    parser = h.parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    rows, dim, appends, n_keys = (20_000, 64, 40, 2_000) if args.quick else (213_000, 384, 284, 20_000)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        sharded = Path(tmp) / "sharded"
        texts = build_store(sharded, rows, dim, appends)
        (store_name,) = [s.name for s in TeacherCache(sharded).stores()]
        compacted = Path(tmp) / "compacted"
        compact_s = []
        for _ in range(args.repeat):  # compaction rewrites its copy: a fresh copy each time
            shutil.rmtree(compacted, ignore_errors=True)
            shutil.copytree(sharded, compacted)
            start = time.perf_counter()
            ((before, after),) = TeacherCache(compacted).compact([store_name])
            compact_s.append(time.perf_counter() - start)
        pick = np.random.default_rng(1).choice(rows, n_keys, replace=False)
        keys = [text_key(MODEL, texts[i]) for i in pick]
        runs: dict[str, list[tuple[float, float]]] = {"sharded": [], "compacted": []}
        results = {}
        for _ in range(args.repeat):
            for name, root in (("sharded", sharded), ("compacted", compacted)):
                cold, warm, results[name] = lookup_times(root, keys)
                runs[name].append((cold, warm))
        if not np.array_equal(results["sharded"], results["compacted"]):
            raise RuntimeError("the compacted store returned other rows")
    table: list[dict[str, Any]] = []
    for name, info in (("sharded", before), ("compacted", after)):
        cold = float(np.median([c for c, _ in runs[name]]))
        warm = float(np.median([w for _, w in runs[name]]))
        table.append({"store": name, "shards": info.shards, "MB": info.bytes / 1e6,
                      "cold_lookup_s": cold, "warm_lookup_s": warm})
    first = table[0]
    for row in table:
        row["cold_speedup"] = first["cold_lookup_s"] / row["cold_lookup_s"]
        row["warm_speedup"] = first["warm_lookup_s"] / row["warm_lookup_s"]
    h.print_table(table, ["store", "shards", "MB", "cold_lookup_s", "warm_lookup_s",
                          "cold_speedup", "warm_speedup"],
                  title=f"lookup of {n_keys:,} random keys in a store of {rows:,} x {dim} float32, "
                        f"median of {args.repeat} (speedup: over the sharded store)")
    compact_median = float(np.median(compact_s))
    print(f"compaction of {before.shards} shards: {compact_median:.2f} s (median of {args.repeat})")
    if not args.no_json:
        h.write_json("cache_compact" + ("_quick" if args.quick else ""),
                     {"rows": rows, "dim": dim, "appends": appends, "keys": n_keys,
                      "repeat": args.repeat, "compact_s": compact_median,
                      "compact_runs_s": compact_s, "table": table,
                      "runs": {k: [list(r) for r in v] for k, v in runs.items()}})


if __name__ == "__main__":
    main()
