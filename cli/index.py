"""``simtools index``: build an index folder from files, Wikipedia pages or a Wikipedia dump."""

from __future__ import annotations

import sys
import time

import click

from .common import LazyGroup, emit_json, friendly_errors

ENCODER_HELP = "count (raw counts), tfidf, hashing, char (character n-grams), minilm, student[:DIR]."
METRICS = ["cosine", "euclidean", "normalized_euclidean", "inner_product"]


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
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder to write the index to (replaced atomically if it exists).")
@click.option("--encoder", default="tfidf", show_default=True, help=ENCODER_HELP)
@click.option("--metric", type=click.Choice(METRICS), default="cosine", show_default=True)
@click.option("--backend", type=click.Choice(["exact", "flat", "hnsw", "ivf"]), default="exact",
              show_default=True, help="exact: brute force; flat/hnsw/ivf: FAISS (dense encoders only).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@friendly_errors
def files_command(paths: tuple[str, ...], out: str, encoder: str, metric: str, backend: str,
                  as_json: bool) -> None:
    """Index text files, class folders, or CSV/TSV/JSONL tables.

    \b
    PATH may be:
      - a text file (one document, titled by its file name);
      - a folder of class-named subfolders of .txt files (label = subfolder);
      - a folder of text files;
      - a .csv, .tsv or .jsonl file with a 'text' column ('label', 'title' optional).

    \b
    Examples:
      simtools index files bbc/ --out bbc-index --encoder tfidf
      simtools index files tweets.jsonl --out tweets-index --encoder student
    """
    from simtools.data import read_documents
    from simtools.index.build import build_index

    started = time.perf_counter()
    documents = [doc for path in paths for doc in read_documents(path)]
    with click.progressbar(length=len(documents), label="indexing", file=sys.stderr,
                           show_pos=True) as bar:
        index = build_index(documents, encoder=encoder, metric=metric, backend=backend,
                            on_batch=bar.update)
    index.save(out)
    seconds = time.perf_counter() - started
    summary = {"out": out, "documents": len(index), "dim": index.dim, "metric": metric,
               "encoder": encoder, "seconds": round(seconds, 3)}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"indexed {len(index)} documents into {out} ({encoder}, {metric}, "
                   f"dim {index.dim}) in {seconds:.1f} s", err=True)
