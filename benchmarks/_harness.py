"""Shared benchmark harness: seeded datasets, a repeat timer, recall, tables and JSON results.

Shaped after FAISS's ``contrib`` (a dataset answers ``get_queries``, ``get_database`` and
``get_groundtruth(k)``). Every benchmark runs all its competitors in one process and one run and
reports ratios, so figures from different machines stay comparable. Benchmarks may print; the
library never imports this module (the tests do, to check the README against the results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SIMTOOLS_SHARED", ROOT.parent / "shared"))


class SyntheticDataset:
    """Seeded float32 vectors, optionally clustered, optionally unit length.

    ``n_clusters=None`` draws i.i.d. Gaussian vectors (the hardest case for ANN); otherwise rows
    are cluster centre + noise, closer to real embeddings. Queries come from the same
    distribution as the database. Ground truth is exact inner product (``metric="ip"``) or
    squared L2, computed in blocks with BLAS.
    """

    def __init__(self, d: int, nb: int, nq: int, *, n_clusters: int | None = None,
                 spread: float = 1.0, normalize: bool = True, metric: str = "ip",
                 seed: int = 1338) -> None:
        self.d, self.nb, self.nq = d, nb, nq
        self.n_clusters, self.spread, self.normalize = n_clusters, spread, normalize
        self.metric, self.seed = metric, seed
        self._xb: np.ndarray | None = None
        self._xq: np.ndarray | None = None
        self._gt: dict[int, np.ndarray] = {}

    def _draw(self) -> None:
        rng = np.random.default_rng(self.seed)
        n = self.nb + self.nq
        X = rng.standard_normal((n, self.d), dtype=np.float32)
        if self.n_clusters:
            centres = rng.standard_normal((self.n_clusters, self.d), dtype=np.float32)
            centres *= 3.0 / self.spread
            X += centres[rng.integers(0, self.n_clusters, n)]
        if self.normalize:
            X /= np.linalg.norm(X, axis=1, keepdims=True)
        self._xb = np.ascontiguousarray(X[: self.nb])
        self._xq = np.ascontiguousarray(X[self.nb:])

    def get_database(self) -> np.ndarray:
        if self._xb is None:
            self._draw()
        assert self._xb is not None
        return self._xb

    def get_queries(self) -> np.ndarray:
        if self._xq is None:
            self._draw()
        assert self._xq is not None
        return self._xq

    def get_groundtruth(self, k: int = 10) -> np.ndarray:
        """Exact top-``k`` database positions for every query, int64 ``(nq, k)``."""
        if k not in self._gt:
            self._gt[k] = exact_knn(self.get_database(), self.get_queries(), k, self.metric)[1]
        return self._gt[k]

    def describe(self) -> dict[str, Any]:
        return {"d": self.d, "nb": self.nb, "nq": self.nq, "n_clusters": self.n_clusters,
                "normalize": self.normalize, "metric": self.metric, "seed": self.seed}


class VectorFileDataset(SyntheticDataset):
    """Real vectors from a ``.npy`` file: the last ``nq`` rows are the queries."""

    def __init__(self, path: str | Path, nq: int, *, metric: str = "ip", normalize: bool = True) -> None:
        X = np.load(path, allow_pickle=False).astype(np.float32)
        if X.ndim != 2 or X.shape[0] <= nq:
            raise SystemExit(f"{path}: expected a 2-d array with more than {nq} rows, got {X.shape}")
        if normalize:
            X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        super().__init__(X.shape[1], X.shape[0] - nq, nq, normalize=normalize, metric=metric)
        self._xb, self._xq = np.ascontiguousarray(X[:-nq]), np.ascontiguousarray(X[-nq:])
        self.path = str(path)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "file": self.path}


def exact_knn(X: np.ndarray, Q: np.ndarray, k: int, metric: str = "ip",
              block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Reference top-``k``: BLAS block products and a full sort of each block's candidates."""
    scores = np.empty((Q.shape[0], k), dtype=np.float32)
    positions = np.empty((Q.shape[0], k), dtype=np.int64)
    sq = np.einsum("ij,ij->i", X, X) if metric == "l2" else np.zeros(0, dtype=X.dtype)
    for s in range(0, Q.shape[0], block):
        S = Q[s:s + block] @ X.T
        if metric == "l2":
            S = sq[None, :] - 2 * S  # ||q||^2 is constant per row: ranks are unchanged
            part = np.argpartition(S, k - 1, axis=1)[:, :k]
            vals = np.take_along_axis(S, part, axis=1)
            order = np.argsort(vals, axis=1, kind="stable")
        else:
            part = np.argpartition(-S, k - 1, axis=1)[:, :k]
            vals = np.take_along_axis(S, part, axis=1)
            order = np.argsort(-vals, axis=1, kind="stable")
        positions[s:s + block] = np.take_along_axis(part, order, axis=1)
        scores[s:s + block] = np.take_along_axis(vals, order, axis=1)
    return scores, positions


def time_repeat(fn: Callable[[], Any], *, repeat: int = 3, warmup: int = 1) -> dict[str, Any]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeat`` times; median and min in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "min_s": min(times), "runs_s": times}


def time_interleaved(fns: dict[str, Callable[[], Any]], *, repeat: int = 3,
                     warmup: int = 1) -> dict[str, dict[str, Any]]:
    """Time several competitors round-robin: each round runs every one once.

    Interleaving spreads slow phases of the machine (frequency changes, a noisy neighbour, page
    cache) over all competitors instead of penalising whichever happens to run first.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - start)
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "runs_s": t}
            for name, t in runs.items()}


def same_neighbours(found: np.ndarray, truth: np.ndarray, found_scores: np.ndarray | None = None,
                    truth_scores: np.ndarray | None = None, *, tol: float = 1e-4) -> dict[str, Any]:
    """How many rows return exactly the reference neighbour set, and how many differ only by ties.

    A row "differs by ties" when the sets differ but the sorted scores agree within ``tol``
    (two documents at the same distance may be returned in either order, or one for the other).
    """
    exact = 0
    ties = 0
    for i, (f, t) in enumerate(zip(found, truth, strict=True)):
        if set(f.tolist()) == set(t.tolist()):
            exact += 1
        elif found_scores is not None and truth_scores is not None and np.allclose(
                np.sort(found_scores[i]), np.sort(truth_scores[i]), atol=tol):
            ties += 1
    n = truth.shape[0]
    return {"rows": n, "identical": exact, "tie_only": ties, "different": n - exact - ties,
            "identical_or_ties": (exact + ties) / n}


def machine_info() -> dict[str, Any]:
    """What ran the benchmark: CPU, Python, library versions, BLAS and its thread counts."""
    info: dict[str, Any] = {
        "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "python": sys.version.split()[0], "numpy": np.__version__,
        "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                          "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
                if k in os.environ},
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # Other work on the machine skews absolute figures (ratios from one run much less).
        "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    for name in ("scipy", "sklearn", "faiss", "simtools"):
        try:
            module = __import__(name)
            info[name] = getattr(module, "__version__", "?")
        except ImportError:
            info[name] = None
    try:
        from threadpoolctl import threadpool_info

        info["threadpools"] = [{k: p.get(k) for k in ("internal_api", "version", "num_threads",
                                                       "architecture", "threading_layer", "prefix")}
                               for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = None
    return info


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str = "") -> None:
    """A plain fixed-width table on stdout (floats to 4 significant digits)."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c)
              for i, c in enumerate(columns)]
    if title:
        print(f"\n{title}")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    sys.stdout.flush()


def markdown_cell(value: Any) -> str:
    """One cell of a README table: floats as given (round them first), 1,000 and up with
    thousands separators and no decimals, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        number = float(value)
        return f"{number:,.0f}" if abs(number) >= 1000 else str(number)
    return str(value)


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table, the form in which the README quotes a benchmark's results.

    Each script prints its tables this way after a run and builds them from its JSON with the
    same code, so ``benchmarks/report.py`` can write them into the docs.
    """
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a row of {len(row)} cells under {len(columns)} columns")
        lines.append("| " + " | ".join(markdown_cell(v) for v in row) + " |")
    return "\n".join(lines)


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the machine description added."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"benchmark": name, "machine": machine_info(), **payload}, handle, indent=1,
                  default=_jsonable)
        handle.write("\n")
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few seconds")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (median kept)")
    p.add_argument("--no-json", action="store_true", help="print only; do not write results/")
    return p


# -- a competitor in a process of its own -------------------------------------------------
def worker_options(p: argparse.ArgumentParser) -> None:
    """The hidden options by which a benchmark runs one competitor in a process of its own."""
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)


def run_worker(script: str, name: str, data: Path, extra: Sequence[str] = (),
               env: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Run ``script --worker name --data data [extra]`` and read its answer, ``data/name.json``
    (see :func:`answer_worker`); a worker that fails is reported as skipped (None)."""
    command = [sys.executable, script, "--worker", name, "--data", str(data), *extra]
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        print(f"  {name}: skipped ({last})", flush=True)
        return None
    return dict(json.loads((data / f"{name}.json").read_text()))


def answer_worker(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """What a worker process hands back to :func:`run_worker`."""
    (Path(args.data) / f"{args.worker}.json").write_text(json.dumps(result))
