"""The same dump build with the local engine and with Ray, at 1 and 2 workers, side by side.

The corpus is the shared Wikipedia fragment's pages repeated ``--copies`` times under new page
ids and titles (so it is several times the fragment, but the same text again: the output says
so), written as a multistream dump with its index. Each build runs in a process of its own
(``python benchmarks/bench_scale.py --child ...``), one after the other, with
``simtools.wiki.build.build_dump_index`` (``--encoder hashing``: no vocabulary to fit, so the
whole dump is parallel work). Reported: pages/s over the build (Ray's start-up excluded, which
is printed apart), CPU seconds per 1,000 pages by stage (read: bz2 and XML; clean: wikitext;
encode), and peak memory of the main process and of a worker.

Targets (issue: scale-out): >= 1.8x from 1 to 2 workers, and Ray at most 15% slower than the
local engine at the same number of workers.

    python benchmarks/bench_scale.py            # 10 copies: 2060 pages
    python benchmarks/bench_scale.py --quick    # 2 copies, a smoke run
"""

from __future__ import annotations

import argparse
import bz2
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import SHARED, markdown_table, parser, write_json  # noqa: E402

FRAGMENT = SHARED / "datasets" / "wikipedia" / "enwiki-sample-pages-articles.xml.bz2"
RUNS = [("local", 1), ("local", 2), ("ray", 1), ("ray", 2)]


def repeated_dump(folder: Path, copies: int) -> tuple[Path, int]:
    """The fragment's pages ``copies`` times under new ids, as a multistream dump."""
    from simtools.wiki.multistream import page_xml_with_id, split_pages, write_multistream

    with bz2.open(FRAGMENT, "rt", encoding="utf-8") as handle:
        header, pages, footer = split_pages(handle.read())
    out = folder / "repeated-pages-articles-multistream.xml.bz2"
    index = folder / "repeated-pages-articles-multistream-index.txt.bz2"

    def renamed() -> Any:
        for copy in range(copies):
            for page in pages:
                pageid = int(re.search(r"<id>\s*(\d+)\s*</id>", page).group(1))  # type: ignore[union-attr]
                title = re.search(r"<title>(.*?)</title>", page).group(1)  # type: ignore[union-attr]
                yield page_xml_with_id(page, copy * 10_000_000 + pageid, f"{title} ({copy})")

    count = write_multistream(header, renamed(), out, index, pages_per_stream=100, footer=footer)
    return out, count


def child(engine: str, workers: int, dump: str, out: str) -> None:
    """One build, in this process; prints its report as JSON."""
    started = time.perf_counter()
    startup = 0.0
    if engine == "ray":
        from simtools.engines.ray_session import connect

        connect(None, num_cpus=workers)
        startup = time.perf_counter() - started
    from simtools.wiki.build import build_dump_index

    report = build_dump_index(dump, out, encoder="hashing", workers=workers, engine=engine,
                              shard_size=300, batch_size=256)
    record = report.to_dict()
    record.update(process_seconds=time.perf_counter() - started, startup_seconds=startup)
    print("RESULT " + json.dumps(record))


def run(engine: str, workers: int, dump: Path, out: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", engine, str(workers), str(dump),
                           str(out)], capture_output=True, text=True, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"the {engine} build with {workers} worker(s) failed:\n{done.stderr}")
    return json.loads(line[len("RESULT "):])


def readme_table(payload: dict[str, Any]) -> str:
    """The table docs/scale.md quotes and the ratios under it, from the JSON a run wrote."""
    rows = []
    for r in payload["runs"].values():
        per_k = {stage: 1000 * s / max(1, r["articles_indexed"])
                 for stage, s in sorted(r["cpu_seconds_by_stage"].items())}
        ray = r["engine"] == "ray"
        rows.append([r["engine"], r["workers"], round(r["pages_per_s"], 1), round(r["seconds"], 1),
                     round(r["startup_seconds"], 1) if ray else "-",
                     " / ".join(f"{stage} {v:.0f}" for stage, v in per_k.items()),
                     round(r["peak_memory_mib"]),
                     round(r["worker_peak_memory_mib"]) if r["worker_peak_memory_mib"] else "-"])
    columns = ["engine", "workers", "pages/s", "build s", "Ray start s",
               "CPU ms per article by stage", "main MiB", "worker MiB"]
    ratios = "\n".join(f"- {name}: {value:.2f}x" for name, value in payload["ratios"].items())
    return markdown_table(columns, rows) + "\n\n" + ratios


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--copies", type=int, default=10, help="times the fragment is repeated")
    p.add_argument("--child", nargs=4, metavar=("ENGINE", "WORKERS", "DUMP", "OUT"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        engine, workers, dump, out = args.child
        child(engine, int(workers), dump, out)
        return
    if not FRAGMENT.exists():
        raise SystemExit(f"{FRAGMENT} is missing: this benchmark needs ../shared/datasets")
    copies = 2 if args.quick else args.copies
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        dump, pages = repeated_dump(Path(tmp), copies)
        print(f"corpus: the fragment's pages repeated {copies} times under new ids ({pages} "
              "pages, the same text again), a multistream dump; --encoder hashing")
        results = {f"{engine}-{workers}": run(engine, workers, dump, Path(tmp) / f"{engine}{workers}")
                   for engine, workers in RUNS}
    rate = {key: results[key]["pages_per_s"] for key in results}
    ratios = {"local 2 / 1 workers": rate["local-2"] / rate["local-1"],
              "ray 2 / 1 workers": rate["ray-2"] / rate["ray-1"],
              "ray / local, 1 worker": rate["ray-1"] / rate["local-1"],
              "ray / local, 2 workers": rate["ray-2"] / rate["local-2"]}
    print(readme_table({"runs": results, "ratios": ratios}))
    print("targets: >= 1.8x from 1 to 2 workers; Ray >= 0.85x the local engine")
    if not args.no_json:
        write_json("scale", {"copies": copies, "pages": pages, "runs": results,
                             "ratios": ratios})


if __name__ == "__main__":
    main()
