"""Approximate search on real embeddings, the ANN-benchmarks way: simtools against FAISS HNSW, hnswlib and usearch.

The vectors are embeddings of real texts at hand: every TweetEval tweet (training and
validation, all tasks) and the sentences of the BBC News articles, deduplicated, shuffled with a
fixed seed; 1,000 of them are the queries, the rest (``--size``) the database. The encoder is
any simtools encoder (``--encoder``; ``minilm`` is the teacher, read through the teacher cache,
so a rerun costs nothing). Vectors are L2-normalised and searched by inner product (cosine).

The protocol is ANN-benchmarks': one thread, k = 10, recall@10 against exact search, and
queries timed one call each; the same settings are also timed with every query in one call
(the way ``Index.search`` is used on many queries). Each competitor runs in a process of its
own, so no thread pool is shared:

* ``simtools-hnsw`` / ``simtools-ivf``: simtools' FAISS backends (``simtools.index.faiss``),
  their default build settings, swept over ``ef_search`` / ``nprobe``;
* ``faiss-hnsw``: ``faiss.IndexHNSWFlat`` with the same M and efConstruction, to show what the
  wrapper costs;
* ``hnswlib`` (M 16 and 32, ef_construction 200: its README's settings) and ``usearch``
  (connectivity 16 and 32, its default expansion_add), each swept over its search beam;
* ``exact``: simtools ``ExactDense`` on one thread, one query a call and all queries in one.

Targets (the hardware issue): at recall@10 >= 0.95, at least 10x our exact search, and at least
the q/s of the best of those libraries at equal recall and threads.

    python benchmarks/bench_ann_libraries.py [--encoder minilm] [--size 100000] [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._harness import (  # noqa: E402
    RESULTS,
    SHARED,
    answer_worker,
    markdown_table,
    parser,
    run_worker,
    worker_options,
    write_json,
)

ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

K = 10
QUERIES = 1000
SEED = 23
RECALL = 0.95
BEAMS = (10, 16, 24, 32, 48, 64, 96, 128, 256)
NPROBES = (1, 2, 4, 8, 12, 16, 32, 64)
#: competitor name -> (library, build settings)
COMPETITORS: dict[str, tuple[str, dict[str, int]]] = {
    "exact": ("exact", {}),
    "simtools-hnsw": ("simtools-hnsw", {}),
    "simtools-ivf": ("simtools-ivf", {}),
    "faiss-hnsw": ("faiss-hnsw", {"M": 32, "efConstruction": 200}),
    "hnswlib-M16": ("hnswlib", {"M": 16, "ef_construction": 200}),
    "hnswlib-M32": ("hnswlib", {"M": 32, "ef_construction": 200}),
    "usearch-c16": ("usearch", {"connectivity": 16}),
    "usearch-c32": ("usearch", {"connectivity": 32}),
}


# -- the texts and their vectors -----------------------------------------------------------
def texts_at_hand() -> list[str]:
    """Every TweetEval tweet and BBC News sentence, deduplicated, in a seeded order."""
    tweeteval = SHARED / "datasets" / "tweeteval"
    if not tweeteval.is_dir():
        raise SystemExit(f"{tweeteval} is missing: this benchmark needs ../shared/datasets")
    texts = [line.strip() for path in sorted(tweeteval.rglob("*_text.txt"))
             for line in path.read_text(encoding="utf-8").splitlines()]
    from simtools.data import read_documents

    for doc in read_documents("bbc-news"):
        texts += [s.strip() for s in doc.text.replace("\n", " ").split(". ")]
    unique = list(dict.fromkeys(t for t in texts if len(t.split()) >= 3))
    order = np.random.default_rng(SEED).permutation(len(unique))
    return [unique[i] for i in order]


def embed(encoder: str, texts: list[str]) -> np.ndarray:
    """Unit float32 vectors of ``texts``; the teacher's go through the teacher cache."""
    if encoder == "minilm":
        from simtools.distill.cache import TeacherCache
        from simtools.encoders.teacher import SentenceEncoder

        model = SentenceEncoder("minilm")
        X = TeacherCache().get_or_compute(model.model_id, texts, model.embed, chunk_size=2048)
    else:
        from simtools import make_encoder

        model = make_encoder(encoder)
        if not getattr(model, "is_fitted_", False):
            model.fit(texts)
        X = model.encode(texts)
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.ascontiguousarray(X / np.maximum(norms, 1e-12), dtype=np.float32)


def exact_top_k(X: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """The reference: the K best rows of every query by a full sort of its scores."""
    out = np.empty((len(Q), K), dtype=np.int64)
    for start in range(0, len(Q), 100):
        scores = Q[start:start + 100] @ X.T
        out[start:start + 100] = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return out


# -- one competitor, in its own process ----------------------------------------------------
Searcher = tuple[str, tuple[int, ...], Callable[[int], None], Callable[[np.ndarray], np.ndarray]]


def _searchers(library: str, X: np.ndarray, settings: dict[str, int]) -> tuple[Searcher, dict]:
    """Build the index; return (knob, its values, set the knob, search(Q) -> positions) and
    the build settings it reports. The knob is set before a pass is timed, never inside."""
    if library == "exact":
        from simtools.index.exact_dense import ExactDense

        exact = ExactDense(X.shape[1])
        exact.add(X)
        return ("", (0,), lambda value: None, lambda Q: exact.search(Q, K)[1]), {}
    if library in ("simtools-hnsw", "simtools-ivf"):
        from simtools.index.faiss import make_backend

        kind, knob, values = (("hnsw", "ef_search", BEAMS) if library == "simtools-hnsw"
                              else ("ivf", "nprobe", NPROBES))
        backend = make_backend(kind, X.shape[1], "ip")
        backend.add(X)
        if hasattr(backend, "train"):
            backend.train()
        info = {k: getattr(backend, k) for k in ("m", "ef_construction", "nlist")
                if hasattr(backend, k)}
        return (knob, values, lambda value: setattr(backend, knob, value),
                lambda Q: backend.search(Q, K)[1]), info
    if library == "faiss-hnsw":
        import faiss

        faiss.omp_set_num_threads(1)
        index = faiss.IndexHNSWFlat(X.shape[1], settings["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = settings["efConstruction"]
        index.add(X)

        def set_ef(value: int) -> None:
            index.hnsw.efSearch = value
        return ("efSearch", BEAMS, set_ef, lambda Q: index.search(Q, K)[1]), {}
    if library == "hnswlib":
        import hnswlib

        graph = hnswlib.Index(space="ip", dim=X.shape[1])
        graph.init_index(max_elements=len(X), M=settings["M"],
                         ef_construction=settings["ef_construction"], random_seed=SEED)
        graph.set_num_threads(1)
        graph.add_items(X, num_threads=1)
        return ("ef", BEAMS, lambda value: graph.set_ef(max(value, K)),
                lambda Q: graph.knn_query(Q, k=K, num_threads=1)[0]), {}
    if library == "usearch":
        from usearch.index import Index as UsearchIndex

        graph = UsearchIndex(ndim=X.shape[1], metric="ip", dtype="f32",
                             connectivity=settings["connectivity"])
        graph.add(np.arange(len(X)), X, threads=1)

        def set_expansion(value: int) -> None:
            graph.expansion_search = value
        return ("expansion_search", BEAMS, set_expansion,
                lambda Q: np.atleast_2d(graph.search(Q, K, threads=1).keys)), {
            "expansion_add": graph.expansion_add}
    raise ValueError(f"unknown library {library!r}")


def _time(search: Callable[[np.ndarray], np.ndarray], Q: np.ndarray, *, batch: bool,
          repeat: int) -> tuple[np.ndarray, float]:
    """Positions of every query and the median seconds of one pass over them."""
    def one_pass() -> np.ndarray:
        if batch:
            return search(Q)
        return np.vstack([search(Q[i:i + 1]) for i in range(len(Q))])
    found = one_pass()  # warm-up, and the answers scored
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        one_pass()
        runs.append(time.perf_counter() - start)
    return found, float(np.median(runs))


def worker(name: str, data: Path, repeat: int) -> dict[str, Any]:
    if name not in COMPETITORS:
        raise SystemExit(f"unknown competitor {name!r}; known: {', '.join(COMPETITORS)}")
    library, settings = COMPETITORS[name]
    X, Q = np.load(data / "X.npy"), np.load(data / "Q.npy")
    truth = np.load(data / "truth.npy")
    start = time.perf_counter()
    (knob, values, configure, search), info = _searchers(library, X, settings)
    build_s = time.perf_counter() - start
    rows = []
    for value in values:
        configure(value)
        found, seconds = _time(search, Q, batch=False, repeat=repeat)
        _, batch_seconds = _time(search, Q, batch=True, repeat=repeat)
        hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
        rows.append({"competitor": name, "knob": knob, "value": value,
                     "recall": hits / truth.size, "qps": len(Q) / seconds,
                     "qps_batch": len(Q) / batch_seconds})
        if rows[-1]["recall"] >= 0.999:
            break  # higher beams only cost time
    return {"competitor": name, "settings": {**settings, **info}, "build_s": build_s,
            "rows": rows}


def run_competitor(name: str, data: Path, repeat: int) -> dict[str, Any] | None:
    """One competitor in a process of its own, on one thread."""
    return run_worker(__file__, name, data, ["--repeat", str(repeat)], env=ONE_THREAD)


# -- the report ----------------------------------------------------------------------------
def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each competitor's fastest setting at recall >= RECALL, and the ratios the targets read."""
    exact_row = next(r for r in results if r["competitor"] == "exact")["rows"][0]
    exact = exact_row["qps"]
    best = {}
    for result in results:
        reaching = [row for row in result["rows"] if row["recall"] >= RECALL and row["knob"]]
        if reaching:
            best[result["competitor"]] = max(reaching, key=lambda row: row["qps"])
    ours = max((best[n] for n in best if n.startswith("simtools")), key=lambda r: r["qps"],
               default=None)
    peers = [best[n] for n in best if not n.startswith(("simtools", "exact"))]
    peer = max(peers, key=lambda r: r["qps"], default=None)
    return {"exact_qps": exact, "best_at_recall": best,
            "ours_vs_exact": ours["qps"] / exact if ours else None,
            "ours_vs_exact_batch": ours["qps_batch"] / exact_row["qps_batch"] if ours else None,
            "ours_vs_best_library": ours["qps"] / peer["qps"] if ours and peer else None,
            "best_library": peer["competitor"] if peer else None}


def readme_table(payload: dict[str, Any]) -> str:
    """The table the results page quotes: each competitor at its fastest setting reaching the
    recall target, then the two ratios the targets read."""
    summary = payload["summary"]
    rows = []
    for result in payload["results"]:
        row = summary["best_at_recall"].get(result["competitor"])
        if result["competitor"] == "exact":
            row = result["rows"][0]
        if row is None:
            rows.append([result["competitor"], "", "below the target", None, None, None,
                         round(result["build_s"])])
            continue
        setting = f"{row['knob']} {row['value']}" if row["knob"] else ""
        rows.append([result["competitor"], setting, round(row["recall"], 3), round(row["qps"]),
                     round(row["qps"] / summary["exact_qps"], 1), round(row["qps_batch"]),
                     round(result["build_s"])])
    table = markdown_table(["competitor", "setting", "recall@10", "q/s, a query a call",
                            "x exact", "q/s, all in one call", "build s"], rows)
    ratios = [f"- ours / exact at recall >= {RECALL}: "
              + _ratio(summary["ours_vs_exact"]) + " a query a call, "
              + _ratio(summary["ours_vs_exact_batch"]) + " all in one call",
              f"- ours / the best library ({summary['best_library'] or 'none measured'}): "
              + _ratio(summary["ours_vs_best_library"])]
    return table + "\n\n" + "\n".join(ratios)


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--encoder", default="minilm", help="a simtools encoder name (minilm: the "
                   "teacher, through its cache)")
    p.add_argument("--size", type=int, default=100_000, help="database vectors")
    p.add_argument("--only", default="", help="comma-separated competitors (default: all)")
    worker_options(p)
    args = p.parse_args()
    if args.worker:
        answer_worker(args, worker(args.worker, Path(args.data), args.repeat))
        return
    size = 5_000 if args.quick else args.size
    texts = texts_at_hand()
    if len(texts) < size + QUERIES:
        raise SystemExit(f"{len(texts):,} texts at hand, fewer than --size {size:,} + "
                         f"{QUERIES:,} queries; give a smaller --size")
    texts = texts[:size + QUERIES]
    print(f"{len(texts):,} texts; embedding with {args.encoder} ...", flush=True)
    started = time.perf_counter()
    vectors = embed(args.encoder, texts)
    print(f"  {time.perf_counter() - started:.0f} s; {vectors.shape[1]} dimensions", flush=True)
    Q, X = vectors[:QUERIES], vectors[QUERIES:]
    names = [n for n in COMPETITORS if not args.only or n in args.only.split(",")]
    if "exact" not in names:
        names.insert(0, "exact")
    with tempfile.TemporaryDirectory(prefix="bench_ann_libraries_") as tmp:
        data = Path(tmp)
        np.save(data / "X.npy", X)
        np.save(data / "Q.npy", Q)
        np.save(data / "truth.npy", exact_top_k(X, Q))
        results = []
        for name in names:
            print(f"  {name} ...", flush=True)
            found = run_competitor(name, data, args.repeat)
            if found is not None:
                results.append(found)
    payload = {"encoder": args.encoder, "database": len(X), "queries": len(Q),
               "dim": int(X.shape[1]), "k": K, "threads": 1,
               "results": results, "summary": summarise(results)}
    print(readme_table(payload))
    if not args.no_json:
        name = f"ann_libraries_{file_slug(args.encoder)}" + ("_quick" if args.quick else "")
        write_json(name, payload)
        print(f"wrote {RESULTS / f'{name}.json'}")


def file_slug(encoder: str) -> str:
    """The encoder's part of the results file name: ``student:DIR`` -> ``student-NAME``, the
    name of DIR's last folder (no colon or slash in a file name)."""
    kind, _, argument = encoder.partition(":")
    return f"{kind}-{Path(argument).name}" if argument else kind


if __name__ == "__main__":
    main()
