"""The metric lesson on real news: 5-fold k-NN accuracy on BBC News with raw count vectors.

Raw counts grow with document length, so Euclidean distance matches documents by length more
than by topic, and the raw inner product by length alone; cosine and L2-normalised Euclidean
compare direction only (and rank identically). Reference figures measured earlier, with a
setup we do not have: euclidean 0.60, cosine 0.90, normalized_euclidean 0.90.

The simtools figures are those of ``simtools benchmark metrics --data bbc-news --encoder
count`` (the same library call, :func:`simtools.benchmarking.benchmark_metrics`, on the same
texts in the same order, so the same folds). scikit-learn cross-checks them on those folds
(CountVectorizer + KNeighborsClassifier, brute force; normalised Euclidean = Euclidean on
L2-normalised rows; it has no inner-product neighbours).

    python benchmarks/bench_metrics_lesson.py [--quick] [--k 5]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

METRICS = ("euclidean", "cosine", "normalized_euclidean", "inner_product")
REFERENCE = {"euclidean": 0.60, "cosine": 0.90, "normalized_euclidean": 0.90}
FOLDS, SEED = 5, 0


def bbc_news() -> tuple[list[str], list[str]]:
    """BBC News as ``simtools benchmark metrics --data bbc-news`` reads it."""
    from simtools.benchmarking import load_labelled_texts

    try:
        return load_labelled_texts("bbc-news")
    except ImportError as e:
        raise SystemExit(str(e)) from None


def sklearn_pipeline(metric: str, k: int) -> Any:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    if metric not in REFERENCE:
        return None
    steps: list[Any] = [CountVectorizer()]
    if metric == "normalized_euclidean":
        steps.append(Normalizer())
    sk_metric = "cosine" if metric == "cosine" else "euclidean"
    steps.append(KNeighborsClassifier(n_neighbors=k, metric=sk_metric, algorithm="brute"))
    return make_pipeline(*steps)


def run(texts: list[str], labels: list[str], k: int) -> list[dict[str, Any]]:
    from sklearn.model_selection import cross_val_score

    from simtools.benchmarking import benchmark_metrics, stratified_folds

    report = benchmark_metrics(texts, labels, encoders="count", metrics=METRICS, folds=FOLDS,
                               k=k, seed=SEED)
    folds = stratified_folds(labels, FOLDS, SEED)
    X, y = np.array(texts, dtype=object), np.array(labels)
    rows = []
    for result in report.results:
        row: dict[str, Any] = {"metric": result.metric,
                               "reference": REFERENCE.get(result.metric),
                               "simtools_accuracy": result.accuracy_mean,
                               "simtools_std": result.accuracy_std,
                               "simtools_macro_f1": result.macro_f1_mean,
                               "simtools_s": sum(result.build_s) + sum(result.query_s)}
        model = sklearn_pipeline(result.metric, k)
        if model is not None:
            start = time.perf_counter()
            scores = cross_val_score(model, X, y, cv=folds)
            row.update(sklearn_accuracy=float(scores.mean()), sklearn_std=float(scores.std()),
                       sklearn_s=time.perf_counter() - start)
            row["agree_with_sklearn"] = abs(row["simtools_accuracy"] - row["sklearn_accuracy"]) < 0.01
        rows.append(row)
        print(f"  {result.metric}: done", flush=True)
    return rows


def readme_table(payload: dict[str, Any]) -> str:
    """The table docs/results.md quotes, from the JSON a run wrote."""
    rows = [[r["metric"], f"{r['simtools_accuracy']:.3f} +- {r['simtools_std']:.3f}",
             f"{r['simtools_macro_f1']:.3f}",
             None if r.get("sklearn_accuracy") is None else f"{r['sklearn_accuracy']:.3f}",
             None if r.get("reference") is None else f"{r['reference']:.2f}"]
            for r in payload["results"]]
    return h.markdown_table(["metric", "simtools accuracy", "simtools macro-F1",
                             "scikit-learn accuracy", "reference (earlier)"], rows)


def main() -> None:
    p = h.parser(__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=5, help="neighbours that vote")
    args = p.parse_args()
    texts, labels = bbc_news()
    if args.quick:
        from simtools.benchmarking.common import sample_positions

        keep = sample_positions(len(texts), 600, SEED)
        assert keep is not None
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    rows = run(texts, labels, args.k)
    h.print_table(rows, ["metric", "simtools_accuracy", "simtools_std", "simtools_macro_f1",
                         "sklearn_accuracy", "sklearn_std", "reference", "agree_with_sklearn",
                         "simtools_s", "sklearn_s"],
                  title=f"BBC News ({len(texts):,} articles, 5 classes), count vectors, "
                        f"{args.k}-NN, {FOLDS}-fold stratified accuracy")
    payload = {"k": args.k, "documents": len(texts), "folds": FOLDS, "seed": SEED,
               "results": rows}
    print("\n" + readme_table(payload))
    if not args.no_json:
        h.write_json("metrics_lesson" + ("_quick" if args.quick else ""), payload)


if __name__ == "__main__":
    main()
