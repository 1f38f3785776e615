"""``simtools benchmark``: metrics and encoders, search quality and ANN indexes on your data."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from simtools.errors import SimtoolsError
from simtools.metrics import Metric

from .benchmark_tables import print_ann, print_metrics, print_search
from .common import emit_json, encoding_option, friendly_errors, in_flags

F = TypeVar("F", bound=Callable[..., Any])

ENCODERS_HELP = ("Encoders, comma-separated: count, tfidf, hashing, char, bm25, minilm, "
                 "student[:DIR]. One whose extra is missing is skipped with a note.")
METRICS_HELP = f"Metrics, comma-separated, among {', '.join(Metric.choices())}."

# Library advice names arguments (recall=1.5, folds=5); here it names the flags.
_FLAGS = {"recall": "--recall", "folds": "--folds", "max_docs": "--max-docs",
          "queries": "--queries", "seed": "--seed", "k": "-k", "encoders": "--encoder",
          "metrics": "--metric"}
_FLAG_RE = re.compile(r"\b(" + "|".join(_FLAGS) + r")=('?)([^'\s;,)]*)\2")


def _flag_errors(func: F) -> F:
    """The library's argument advice said in this command's flags, as one line."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SimtoolsError as e:
            message = _FLAG_RE.sub(lambda m: f"{_FLAGS[m.group(1)]} {m.group(3)}", in_flags(str(e)))
            raise click.ClickException(message.splitlines()[0] if message else type(e).__name__
                                       ) from None

    return wrapper  # type: ignore[return-value]


class _Bar:
    """A progress callback ``(done, total)`` that draws a bar on stderr from its first call;
    nothing when stderr is not a terminal (as ``common.progress``)."""

    def __init__(self, label: str) -> None:
        self.label, self.pos = label, 0
        self.bar: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr,
                                         show_pos=True, show_eta=True)
            self.bar.__enter__()
        self.bar.update(done - self.pos)
        self.pos = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@contextmanager
def _progress(label: str) -> Iterator[_Bar]:
    bar = _Bar(label)
    try:
        yield bar
    finally:
        bar.close()


def _check_plot(plot: str | None) -> None:
    """Fail before any work when --plot cannot be written (matplotlib missing)."""
    if plot is not None:
        from simtools.benchmarking.common import pyplot

        pyplot()


def _existing_or_named(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from simtools.data import NAMED_DATASETS

    if value is not None and value not in NAMED_DATASETS and not os.path.exists(value):
        raise click.BadParameter(f"{value!r} does not exist (nor is it one of the named data "
                                 f"sets: {', '.join(sorted(NAMED_DATASETS))})", ctx=ctx,
                                 param=param)
    return value


def _common(func: F) -> F:
    """--seed, --max-docs, --plot and --json, which every benchmark takes."""
    for option in reversed([
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed of every draw (folds, samples, held-apart queries)."),
        click.option("--max-docs", type=click.IntRange(min=1), default=None,
                     help="Sample this many documents (or vectors) first, to bound the time; "
                          "the output says when it did."),
        click.option("--plot", type=click.Path(dir_okay=False), default=None,
                     help="Save a picture to this file (.png, .svg, .pdf); needs matplotlib "
                          "(simtools[bench])."),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object."),
    ]):
        func = option(func)
    return func


@click.group("benchmark")
def benchmark_group() -> None:
    """Compare metrics, encoders and indexes on your own data.

    \b
    Examples:
      simtools benchmark metrics --data bbc-news --encoder count
      simtools benchmark search --index wiki-index --queries queries.tsv
      simtools benchmark index --index student-index --recall 0.95
    """


@benchmark_group.command("metrics")
@click.option("--data", "data_path", required=True, callback=_existing_or_named,
              help="Labelled data, the forms `simtools distill --data` takes: a CSV/TSV/JSONL "
                   "file with text and label, class subfolders, a TweetEval folder, bbc-news.")
@click.option("--encoder", "encoders", default="count", show_default=True, help=ENCODERS_HELP)
@click.option("--metric", "metrics", default=",".join(Metric.choices()), show_default=True,
              help=METRICS_HELP)
@click.option("--folds", type=int, default=5, show_default=True, help="Cross-validation folds.")
@click.option("-k", "k", type=int, default=5, show_default=True, help="Neighbours that vote.")
@encoding_option
@_common
@friendly_errors
@_flag_errors
def metrics_command(data_path: str, encoders: str, metrics: str, folds: int, k: int,
                    encoding: str | None, seed: int, max_docs: int | None, plot: str | None,
                    as_json: bool) -> None:
    """k-NN accuracy and macro-F1 of every encoder under every metric, cross-validated.

    Each combination is scored by stratified k-fold cross-validation (the encoder fitted on
    the training folds only), with its build time (fit, encode and index the training folds)
    and query time (classify the held-out fold). A '*' marks the best mean accuracy. On raw
    counts Euclidean distance follows document length; cosine and normalised Euclidean
    compare direction and rank alike.

    \b
    Examples:
      simtools benchmark metrics --data bbc-news --encoder count
      simtools benchmark metrics --data news.csv --encoder count,tfidf,student --folds 3 -k 3
      simtools benchmark metrics --data tweets/ --max-docs 2000 --plot metrics.png --json
    """
    from simtools.benchmarking.common import check_encoders, check_metrics, load_labelled_texts
    from simtools.benchmarking.metrics import benchmark_metrics

    check_encoders(encoders)  # before the data is read
    check_metrics(metrics)
    _check_plot(plot)
    texts, labels = load_labelled_texts(data_path, encoding=encoding)
    with _progress("benchmarking metrics") as update:
        report = benchmark_metrics(texts, labels, encoders=encoders, metrics=metrics,
                                   folds=folds, k=k, seed=seed, max_docs=max_docs,
                                   progress=update)
    if plot is not None:
        from simtools.benchmarking.plots import plot_metrics

        plot_metrics(report, plot)
    if as_json:
        emit_json({"data": data_path, **report.to_dict(), "plot": plot})
    else:
        print_metrics(report, data_path, max_docs, plot)


@benchmark_group.command("search")
@click.option("--queries", "queries_path", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Queries and their relevant documents: TSV (query<TAB>id or title) or "
                   "JSONL ({\"query\", \"relevant\"}).")
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False),
              help="A saved index (`simtools index ...`), scored as it is.")
@click.option("--documents", "documents_path", callback=_existing_or_named,
              help="The documents to build an index from per --encoder x --metric (what "
                   "`simtools index files` or `index dump` read; a .xml.bz2 dump too).")
@click.option("--encoder", "encoders", default=None,
              help=ENCODERS_HELP + " hybrid[:student|:minilm] too. [default with --documents: "
                   "bm25; tfidf when --metric is given]")
@click.option("--metric", "metrics", default=None,
              help=METRICS_HELP + " [default: each encoder's own]")
@encoding_option
@_common
@friendly_errors
@_flag_errors
def search_command(queries_path: str, index_dir: str | None, documents_path: str | None,
                   encoders: str | None, metrics: str | None, encoding: str | None, seed: int,
                   max_docs: int | None, plot: str | None, as_json: bool) -> None:
    """MRR@10, recall@1, recall@10, nDCG@10 and queries/s on your queries.

    --index scores a saved index; --documents with --encoder/--metric lists builds an index
    per combination from those documents and scores each the same way. A query none of whose
    documents is in the index is left out (and counted); if no query's is, it is an error.
    An index's ids are its documents' ids (Wikipedia page ids), or their numbers from 0: name
    documents by title where the ids could differ.

    \b
    Examples:
      simtools benchmark search --index wiki-index --queries queries.tsv
      simtools benchmark search --index wiki-index --queries queries.tsv \\
          --documents enwiki-pages-articles.xml.bz2 --encoder bm25,tfidf,char,student
      simtools benchmark search --documents notes/ --queries q.jsonl --metric cosine,euclidean
    """
    from simtools.benchmarking.queries import read_queries
    from simtools.benchmarking.search import benchmark_search, read_corpus

    if index_dir is None and documents_path is None:
        raise click.UsageError("give --index DIR (a saved index), --documents PATH, or both")
    if documents_path is None and (encoders or metrics):
        raise click.UsageError("--encoder and --metric build indexes from the documents, "
                               "which a saved index does not keep: add --documents PATH")
    from simtools.benchmarking.common import check_encoders, check_metrics

    if encoders is not None:
        check_encoders(encoders, hybrid=True)  # before the documents are read
    if metrics is not None:
        check_metrics(metrics)
    _check_plot(plot)
    queries = read_queries(queries_path, encoding=encoding)
    index = _load_index(index_dir)
    documents = None if documents_path is None else read_corpus(documents_path, encoding=encoding)
    with _progress("benchmarking search") as update:
        report = benchmark_search(queries, index=index, documents=documents, encoders=encoders,
                                  metrics=metrics, max_docs=max_docs, seed=seed, progress=update)
    if plot is not None:
        from simtools.benchmarking.plots import plot_search

        plot_search(report, plot)
    if as_json:
        emit_json({"queries_file": queries_path, "index": index_dir,
                   "documents_path": documents_path, **report.to_dict(), "plot": plot})
    else:
        print_search(report, queries_path, index_dir, plot)


def _load_index(index_dir: str | None) -> Any:
    if index_dir is None:
        return None
    from simtools.index.hybrid import load_searchable

    return load_searchable(index_dir)


@benchmark_group.command("index")
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False),
              help="A saved dense index (student, minilm) whose vectors to benchmark.")
@click.option("--vectors", "vectors_path", type=click.Path(exists=True, dir_okay=False),
              help="A .npy file of float32 vectors (n, d) instead of an index.")
@click.option("--metric", type=click.Choice(Metric.choices()), default=None,
              help="The metric of --vectors [default: cosine]; an index has its own.")
@click.option("--queries", "n_queries", type=click.IntRange(min=1), default=None,
              help="Vectors held apart as queries [default: a tenth, at most 1,000].")
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Neighbours per query (recall@k).")
@click.option("--recall", type=float, default=0.95, show_default=True,
              help="The recall target, in (0, 1].")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed searches per setting (the median is kept).")
@_common
@friendly_errors
@_flag_errors
def index_command(index_dir: str | None, vectors_path: str | None, metric: str | None,
                  n_queries: int | None, k: int, recall: float, repeat: int, seed: int,
                  max_docs: int | None, plot: str | None, as_json: bool) -> None:
    """Exact search against HNSW and IVF: recall@k and queries/s for a sweep of ef_search and
    nprobe, on vectors held apart from the data itself.

    Prints the fastest setting whose recall reaches --recall (exact search when none does).
    The ANN backends need FAISS (simtools[ann]); without it they are skipped with a note.

    \b
    Examples:
      simtools benchmark index --index student-index
      simtools benchmark index --vectors embeddings.npy --metric inner_product --recall 0.99
      simtools benchmark index --index student-index --max-docs 50000 --plot ann.png --json
    """
    import numpy as np

    from simtools.benchmarking.ann import benchmark_ann, check_recall, index_vectors

    if (index_dir is None) == (vectors_path is None):
        raise click.UsageError("give exactly one of --index DIR and --vectors FILE.npy")
    if index_dir is not None and metric is not None:
        raise click.UsageError("--metric is for --vectors; an index is benchmarked under its "
                               "own metric")
    check_recall(recall)  # before the vectors are read
    _check_plot(plot)
    if index_dir is not None:
        vectors, chosen = index_vectors(_load_index(index_dir))
    else:
        assert vectors_path is not None
        vectors, chosen = np.load(vectors_path, allow_pickle=False), Metric(metric or "cosine")
    with _progress("benchmarking index") as update:
        report = benchmark_ann(vectors, metric=chosen, queries=n_queries, k=k, recall=recall,
                               seed=seed, max_docs=max_docs, repeat=repeat, progress=update)
    if plot is not None:
        from simtools.benchmarking.plots import plot_ann

        plot_ann(report, plot)
    if as_json:
        emit_json({"index": index_dir, "vectors": vectors_path, **report.to_dict(), "plot": plot})
    else:
        print_ann(report, index_dir or vectors_path or "", plot)
