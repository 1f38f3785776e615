"""``simtools search``: the nearest documents of an index for each query."""

from __future__ import annotations

import click

from .common import emit_json, friendly_errors, read_texts


@click.command("search")
@click.argument("queries", nargs=-1, required=True)
@click.option("--index", "index_dir", required=True, type=click.Path(file_okay=False),
              help="Index folder made by `simtools index`.")
@click.option("-k", "k", type=int, default=None,
              help="Neighbours per query [default: 10, or the index size if smaller].")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per query, one per line.")
@friendly_errors
def search_command(queries: tuple[str, ...], index_dir: str, k: int | None, as_json: bool) -> None:
    """Find the nearest documents to each QUERY ('-' reads one query per line from stdin).

    Scores are in the index metric's terms: cosine similarity (higher is nearer), Euclidean
    distance (lower is nearer), normalised Euclidean similarity, or inner product.

    \b
    Examples:
      simtools search "machine learning on tweets" --index wiki-index -k 3
      cat queries.txt | simtools search - --index wiki-index --json
    """
    from simtools.index import Index

    texts = read_texts(queries, what="query")
    index = Index.load(index_dir)
    results = index.search(texts, k=k if k is not None else min(10, len(index)))
    for text, neighbours in zip(texts, results):
        if as_json:
            emit_json({"query": text, "neighbours": [n.to_dict() for n in neighbours]})
            continue
        click.echo(f"query: {text}")
        for rank, n in enumerate(neighbours, 1):
            label = f"  [{n.label}]" if n.label is not None and n.label != n.title else ""
            click.echo(f"  {rank:>2}. {n.score:8.4f}  {n.title or n.id}{label}")
