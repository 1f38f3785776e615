"""Approximate search: recall@10 against queries/s for HNSW and IVF (flat, SQ8, PQ) backends.

Sweeps HNSW's ``ef_search`` and IVF's ``nprobe`` on simtools' FAISS backends over clustered
synthetic unit vectors (default 100,000 x 384 in 100 clusters, 1,000 queries), against exact
search (simtools ``ExactDense``) timed in the same run. Target: recall@10 >= 0.95 at >= 10x the
exact queries/s. Writes results/ann.json and a plot, results/ann.png.

    python benchmarks/bench_ann.py [--quick] [--vectors FILE.npy] [--repeat 3]

``--vectors`` takes real embeddings (float32 ``(n, d)``; the last 1,000 rows become queries).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

RECALL_TARGET = 0.95
SPEEDUP_TARGET = 10.0


def main() -> None:
    p = h.parser(__doc__.splitlines()[0])
    p.add_argument("--vectors", type=Path, help="a .npy file of real embeddings to use instead")
    p.add_argument("--ef-construction", type=int, default=None,
                   help="HNSW build beam (default: the backend's)")
    args = p.parse_args()
    k = 10
    if args.vectors:
        data: h.SyntheticDataset = h.VectorFileDataset(args.vectors, 1_000)
    elif args.quick:
        data = h.SyntheticDataset(384, 10_000, 200, n_clusters=20)
    else:
        data = h.SyntheticDataset(384, 100_000, 1_000, n_clusters=100)
    X, Q = data.get_database(), data.get_queries()
    truth = data.get_groundtruth(k)
    nq, d = Q.shape

    from simtools.benchmarking.ann import Sweep, sweep
    from simtools.index.exact import ExactDense

    exact = ExactDense(d, "ip")
    exact.add(X)
    t = h.time_repeat(lambda: exact.search(Q, k), repeat=args.repeat)
    exact_qps = nq / t["median_s"]
    print(f"exact (simtools ExactDense): {exact_qps:,.0f} q/s", flush=True)

    ef_c = {"ef_construction": args.ef_construction} if args.ef_construction else {}
    configs = [
        Sweep("hnsw", "hnsw", "ef_search", (8, 16, 24, 32, 64, 128, 256), {**ef_c}),
        Sweep("hnsw-sq8", "hnsw", "ef_search", (16, 32, 64, 128), {**ef_c, "compression": "sq8"}),
        Sweep("ivf", "ivf", "nprobe", (1, 2, 4, 8, 10, 12, 16, 32, 64)),
        Sweep("ivf-sq8", "ivf", "nprobe", (4, 8, 16, 32, 64), {"compression": "sq8"}),
        Sweep("ivf-pq", "ivf", "nprobe", (4, 8, 16, 32, 64), {"compression": "pq", "pq_m": d // 4}),
        # the same codes at nprobe 16, the refine x k best candidates re-ranked by their exact
        # score (IndexRefineFlat, which keeps the full vectors as well)
        Sweep("ivf-pq-refine", "ivf", "refine", (4, 16, 64, 256),
              {"compression": "pq", "pq_m": d // 4, "nprobe": 16, "refine": 4}),
    ]
    rows: list[dict] = [{"method": "exact", "knob": "", "value": None, "recall": 1.0,
                         "qps": exact_qps, "speedup": 1.0, "build_s": 0.0}]
    # The sweep of `simtools benchmark index`: the same function, these settings.
    rows += [r.to_dict() for r in sweep(X, Q, truth, configs, k=k, inner="ip",
                                        exact_qps=exact_qps, repeat=args.repeat,
                                        progress=lambda done, total: print(
                                            f"  {done}/{total} settings", flush=True))]

    for r in rows:
        r["meets_target"] = r["recall"] >= RECALL_TARGET and r["speedup"] >= SPEEDUP_TARGET
    h.print_table(rows, ["method", "knob", "value", "recall", "qps", "speedup", "build_s",
                         "meets_target"],
                  title=f"recall@{k} vs queries/s, {X.shape[0]:,} x {d}, {nq:,} queries "
                        f"(speedup = q/s over exact; target recall >= {RECALL_TARGET} at "
                        f">= {SPEEDUP_TARGET:.0f}x)")
    best: dict[str, dict] = {}
    for r in rows[1:]:
        if r["recall"] >= RECALL_TARGET and (r["method"] not in best or
                                             r["qps"] > best[r["method"]]["qps"]):
            best[r["method"]] = r
    print("\nfastest setting reaching recall >= 0.95 per method:")
    for method, r in best.items():
        print(f"  {method}: {r['knob']}={r['value']}  recall {r['recall']:.3f}  "
              f"{r['qps']:,.0f} q/s  {r['speedup']:.1f}x exact")
    suffix = "_quick" if args.quick else ""
    if not args.no_json:
        h.write_json("ann" + suffix, {"dataset": data.describe(), "k": k, "repeat": args.repeat,
                                      "exact_qps": exact_qps, "results": rows,
                                      "best_at_target": best})
        plot(rows, exact_qps, h.RESULTS / f"ann{suffix}.png", data.describe())


def readme_table(payload: dict) -> str:
    """The table the results page quotes, from the JSON a run wrote: every setting swept."""
    rows = []
    for r in payload["results"]:
        options = ", ".join(f"{key} {value}" for key, value in sorted(r.get("options", {}).items())
                            if key != r["knob"])  # the swept knob has its own column
        knob = "" if not r["knob"] else f"{r['knob']} {r['value']}"
        rows.append([r["method"], options, knob, round(r["recall"], 3), round(r["qps"]),
                     round(r["speedup"], 1), round(r["build_s"]) if r["build_s"] else None,
                     "yes" if r["meets_target"] else ""])
    return h.markdown_table(["backend", "options", "setting", "recall@10", "q/s", "x exact",
                             "build s", "meets target"], rows)


def plot(rows: list[dict], exact_qps: float, path: Path, dataset: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in dict.fromkeys(r["method"] for r in rows if r["method"] != "exact"):
        pts = [r for r in rows if r["method"] == method]
        ax.plot([r["recall"] for r in pts], [r["qps"] for r in pts], "o-", label=method)
        for r in pts:
            ax.annotate(str(r["value"]), (r["recall"], r["qps"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
    ax.axhline(exact_qps, color="k", ls="--", lw=1, label=f"exact ({exact_qps:,.0f} q/s)")
    ax.axhline(exact_qps * SPEEDUP_TARGET, color="grey", ls=":", lw=1, label="10x exact")
    ax.axvline(RECALL_TARGET, color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries per second (log)")
    ax.set_title(f"simtools ANN backends: {dataset['nb']:,} x {dataset['d']}, "
                 f"labels = ef_search / nprobe", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path.relative_to(h.ROOT)}")


if __name__ == "__main__":
    main()
