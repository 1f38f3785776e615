"""Benchmarks on the user's own data, the library behind ``simtools benchmark``.

- :func:`benchmark_metrics` (``metrics``): cross-validated k-NN accuracy and macro-F1 of every
  encoder under every metric, with build and query times: the metric lesson on your texts.
- :func:`benchmark_search` (``search``): MRR@10, recall@1/10, nDCG@10 and queries/s of a saved
  index, or of one built per encoder x metric, on a file of queries and relevant documents.
- :func:`benchmark_ann` (``ann``): exact search against the FAISS backends on your vectors,
  recall@k against queries/s, and the fastest setting that reaches a recall target.

The scores come from :mod:`simtools.evaluation`, as those of ``benchmarks/`` do. Names load
lazily, so importing this package imports neither scikit-learn nor FAISS::

    from simtools.benchmarking import benchmark_metrics, load_labelled_texts
    texts, labels = load_labelled_texts("bbc-news")
    report = benchmark_metrics(texts, labels, encoders="count")
"""

from __future__ import annotations

from .._lazy import lazy_getattr

__all__ = [
    "AnnReport",
    "MetricsReport",
    "QuerySet",
    "SearchReport",
    "Skipped",
    "Sweep",
    "benchmark_ann",
    "benchmark_metrics",
    "benchmark_search",
    "index_vectors",
    "load_labelled_texts",
    "read_corpus",
    "read_queries",
    "stratified_folds",
]

_LAZY = {
    "AnnReport": "simtools.benchmarking.ann",
    "Sweep": "simtools.benchmarking.ann",
    "benchmark_ann": "simtools.benchmarking.ann",
    "index_vectors": "simtools.benchmarking.ann",
    "MetricsReport": "simtools.benchmarking.metrics",
    "benchmark_metrics": "simtools.benchmarking.metrics",
    "stratified_folds": "simtools.benchmarking.metrics",
    "QuerySet": "simtools.benchmarking.queries",
    "read_queries": "simtools.benchmarking.queries",
    "SearchReport": "simtools.benchmarking.search",
    "benchmark_search": "simtools.benchmarking.search",
    "read_corpus": "simtools.benchmarking.search",
    "Skipped": "simtools.benchmarking.common",
    "load_labelled_texts": "simtools.benchmarking.common",
}

__getattr__ = lazy_getattr("simtools.benchmarking", _LAZY)
