"""GPU check of exact dense search on torch: correctness against the CPU, speed, the bound.

One short script for a machine with a GPU (a few minutes at the full size):

1. correctness: ``TorchExactDense`` (float32 and float16) against ``ExactDense`` on the CPU,
   1,000,000 x 384 float32 unit vectors, 1,000 queries, k = 10;
2. time to move the index onto the GPU, per dtype;
3. queries/s at batches of 1, 100 and 10,000, per dtype;
4. the bound: the GPU's read bandwidth (a reduction over the stored vectors) for single
   queries, and its matmul rate for the largest batch, with the fraction of each reached;
5. the ratio to this project's CPU figure at 1M x 384 (benchmarks/results/exact_dense.json;
   target: >= 50x at a batch of 10,000).

    python benchmarks/gpu_check.py [--quick] [--device cuda|cpu] [--size 1000000]

``--quick`` runs tiny sizes (on the CPU device when no GPU is present), to test the script.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

DTYPES = ("float32", "float16")
TARGET_VS_CPU = 50.0


def _sync(torch: Any, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn: Any, torch: Any, device: str, repeat: int) -> float:
    """Median seconds of ``fn`` after one warm-up, the device synchronised around each run."""
    fn()
    runs = []
    for _ in range(repeat):
        _sync(torch, device)
        started = time.perf_counter()
        fn()
        _sync(torch, device)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def device_bounds(torch: Any, rows: Any, queries: np.ndarray, device: str) -> dict[str, float]:
    """Read bandwidth over the stored rows, and the matmul rate of the largest batch."""
    t_read = _timed(lambda: rows.sum(dtype=torch.float32), torch, device, 10)
    q = torch.from_numpy(queries).to(device, rows.dtype)
    block = rows[: max(1, min(rows.shape[0], (1 << 30) // (4 * len(queries))))]
    t_mm = _timed(lambda: q @ block.T, torch, device, 5)
    flops = 2.0 * len(queries) * block.shape[0] * rows.shape[1]
    nbytes = rows.numel() * rows.element_size()
    return {"read_gbs": nbytes / t_read / 1e9, "matmul_tflops": flops / t_mm / 1e12,
            "bytes": nbytes}


def check_dtype(dtype: str, host: Any, Q: np.ndarray, reference: tuple[np.ndarray, np.ndarray],
                batches: list[int], device: str, k: int) -> dict[str, Any]:
    from simtools.index.device import import_torch
    from simtools.index.torch_exact import TorchExactDense

    torch = import_torch()
    backend = TorchExactDense.from_host(host, device=device, dtype=dtype)
    moved = backend.to_device()
    _sync(torch, device)
    n_check = reference[1].shape[0]
    scores, positions = backend.search(Q[:n_check], k)
    agree = h.same_neighbours(positions, reference[1], scores, reference[0])
    rows = backend.device_rows()
    bounds = device_bounds(torch, rows, Q[: max(batches)], device)
    speed = []
    for batch in batches:
        repeat = 30 if batch == 1 else 5
        step = iter(range(10**9))

        def one_batch(batch: int = batch, step: Any = step) -> None:
            start = (next(step) * batch) % max(1, len(Q) - batch + 1)
            backend.search(Q[start:start + batch], k)
        seconds = _timed(one_batch, torch, device, repeat)
        row: dict[str, Any] = {"dtype": dtype, "batch": batch, "seconds": seconds,
                               "qps": batch / seconds}
        if batch == 1:  # bound: reading the stored vectors once
            row["of_read_bound"] = bounds["bytes"] / seconds / 1e9 / bounds["read_gbs"]
        if batch == max(batches):
            flops = 2.0 * batch * len(host) * host.dim
            row["of_matmul_bound"] = flops / seconds / 1e12 / bounds["matmul_tflops"]
        speed.append(row)
    return {"dtype": dtype, "move_s": moved, "identical": agree["identical"],
            "tie_only": agree["tie_only"], "different": agree["different"],
            "bounds": bounds, "speed": speed}


def cpu_reference_qps(nb: int) -> float | None:
    """ExactDense q/s at ``nb`` documents from this project's committed CPU benchmark."""
    path = h.RESULTS / "exact_dense.json"
    if not path.exists():
        return None
    for size in json.loads(path.read_text()).get("sizes", []):
        if size["dataset"]["nb"] == nb:
            for row in size["results"]:
                if row["method"] == "simtools ExactDense":
                    return float(row["qps"])
    return None


def main() -> None:
    p = h.parser(__doc__.splitlines()[0])
    p.add_argument("--device", default=None, help="cuda (default when torch sees one) or cpu")
    p.add_argument("--size", type=int, default=None, help="documents [default: 1,000,000]")
    args = p.parse_args()
    from simtools.index.device import import_torch
    from simtools.index.exact import ExactDense

    torch = import_torch()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    nb = args.size or (5_000 if args.quick else 1_000_000)
    d, k = (32, 10) if args.quick else (384, 10)
    batches = [1, 10, 100] if args.quick else [1, 100, 10_000]
    n_check = 50 if args.quick else 1_000
    data = h.SyntheticDataset(d, nb, max(batches), normalize=True, metric="ip")
    X, Q = data.get_database(), data.get_queries()
    host = ExactDense(d, "ip")
    host.add(X)
    started = time.perf_counter()
    reference = host.search(Q[:n_check], k)
    cpu_s = time.perf_counter() - started
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu (torch)"
    print(f"{nb:,} x {d} float32, k={k}, on {name}; CPU reference: {n_check} queries in "
          f"{cpu_s:.2f} s ({n_check / cpu_s:,.0f} q/s on this machine's CPU)", flush=True)
    checks = [check_dtype(dt, host, Q, reference, batches, device, k) for dt in DTYPES]
    cpu_qps = cpu_reference_qps(nb)
    rows = []
    for c in checks:
        print(f"{c['dtype']}: moved to {device} in {c['move_s']:.2f} s; neighbours vs CPU: "
              f"{c['identical']} identical, {c['tie_only']} ties, {c['different']} different; "
              f"read {c['bounds']['read_gbs']:.0f} GB/s, matmul "
              f"{c['bounds']['matmul_tflops']:.1f} TFLOP/s")
        for s in c["speed"]:
            s["vs_project_cpu"] = s["qps"] / cpu_qps if cpu_qps else None
            rows.append(s)
    h.print_table(rows, ["dtype", "batch", "qps", "of_read_bound", "of_matmul_bound",
                         "vs_project_cpu"])
    best = max((s["vs_project_cpu"] or 0.0) for s in rows if s["batch"] == max(batches))
    if cpu_qps:
        print(f"batch {max(batches):,}: {best:.0f}x the project's CPU q/s at {nb:,} "
              f"({'meets' if best >= TARGET_VS_CPU else 'misses'} the >= {TARGET_VS_CPU:.0f}x "
              "target)")
    payload = {"device": device, "device_name": name, "torch": torch.__version__,
               "cuda": getattr(torch.version, "cuda", None), "dataset": data.describe(), "k": k,
               "cpu_reference_s": cpu_s, "project_cpu_qps": cpu_qps, "checks": checks}
    name_json = "gpu_check" + ("_quick" if args.quick else "")
    out = os.environ.get("OUT")
    if out:  # a lent GPU machine sends back only what is under $OUT
        path = Path(out) / f"{name_json}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"benchmark": name_json, "machine": h.machine_info(), **payload}
        path.write_text(json.dumps(record, indent=1, default=h._jsonable) + "\n",
                        encoding="utf-8")
        print(f"\nwrote {path}")
    elif not args.no_json:
        h.write_json(name_json, payload)

if __name__ == "__main__":
    main()
