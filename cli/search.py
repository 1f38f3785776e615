"""``simtools search``: the nearest documents of an index for each query."""

from __future__ import annotations

from typing import Any

import click

from .common import (
    EMPTY,
    EMPTY_REASON,
    UNKNOWN,
    emit_json,
    friendly_errors,
    read_texts,
    tsv_safe,
    warn_unanswered,
)
from .index import device_option

_UNKNOWN_REASON = "no token this index's encoder knows"


@click.command("search")
@click.argument("queries", nargs=-1, required=True)
@click.option("--index", "index_dir", required=True, type=click.Path(file_okay=False),
              help="Index folder made by `simtools index`.")
@click.option("-k", "k", type=int, default=None,
              help="Neighbours per query [default: 10, or the index size if smaller].")
@click.option("--ranking", type=click.Choice(["hybrid", "lexical", "dense"]), default=None,
              help="For an index built with --encoder hybrid: the fused ranking (its default), "
                   "or one half alone. hybrid on any other index is an error.")
@click.option("--json", "as_json", is_flag=True,
              help='One JSON object per query, one per line; "metric" names what the scores are.')
@device_option
@friendly_errors
def search_command(queries: tuple[str, ...], index_dir: str, k: int | None, ranking: str | None,
                   as_json: bool, device: str) -> None:
    """Find the nearest documents to each QUERY ('-' reads one query per line from stdin).

    Scores are in the index metric's terms: BM25 score (bm25 indexes), cosine similarity
    (higher is nearer), Euclidean distance (lower is nearer), normalised Euclidean similarity,
    inner product, or for a hybrid index the fused reciprocal-rank score (rrf).

    Fewer than k: on a word or character index (bm25, tfidf, count, hashing, char) a document
    that shares no word with the query is not a neighbour, so a query gets only the documents
    that match (none: "no document shares a word with this query"); Euclidean distance and
    dense indexes (student, minilm) always give k.

    Every input line gets one record, in order. A query with nothing visible (blank,
    whitespace, control characters) gets the record EMPTY, one with no token the index's
    encoder knows UNKNOWN: no neighbours, and with --json an "error"; a warning on stderr
    counts them.

    \b
    Exit status:
      0    every query was answered, EMPTY and UNKNOWN ones included
      1    an error (a message on stderr says what to fix)
      2    a usage error
      141  the reader of the output went away (e.g. | head), as for Unix tools

    \b
    Examples:
      simtools search "machine learning on tweets" --index wiki-index -k 3
      cat queries.txt | simtools search - --index wiki-index --json
    """
    from simtools._validation import blank_mask, check_k
    from simtools.index.build import encode_known
    from simtools.index.hybrid import load_searchable

    texts = read_texts(queries, what="query", keep_blank=True)
    index = _pick_ranking(_on_device(load_searchable(index_dir), device), ranking)
    k = check_k(k if k is not None else min(10, len(index)), len(index))
    if hasattr(index, "search_known"):
        answers, known = index.search_known(texts, k=k)
        found = iter([row for row in answers if row is not None])
        metric = index.metric
    else:
        vectors, known = encode_known(index, texts, what="query")
        found = iter(index.search(vectors, k=k) if vectors is not None else [])
        kind = getattr(index.encoder, "type_name", "")
        metric = "bm25" if kind == "bm25" else index.metric.value
    blank = blank_mask(texts)
    unknown: list[int] = []
    empty: list[int] = []
    for i, text in enumerate(texts):
        if known[i]:
            neighbours = next(found)
            if as_json:
                emit_json({"query": text, "metric": metric,
                           "neighbours": [n.to_dict() for n in neighbours]})
                continue
            click.echo(f"query: {tsv_safe(text)}")
            if not neighbours:
                click.echo("   -  no document shares a word with this query")
            for rank, n in enumerate(neighbours, 1):
                label = f"  [{n.label}]" if n.label is not None and n.label != n.title else ""
                click.echo(f"  {rank:>2}. {n.score:8.4f}  {n.title or n.id}{label}")
            continue
        (empty if blank[i] else unknown).append(i)
        error = f"{EMPTY}: {EMPTY_REASON}" if blank[i] else f"{UNKNOWN}: {_UNKNOWN_REASON}"
        if as_json:
            emit_json({"query": text, "metric": metric, "neighbours": [], "error": error})
        else:
            click.echo(f"query: {tsv_safe(text)}")
            click.echo(f"   -  {error}")
    warn_unanswered(texts, unknown, empty, verb="searched", reason=_UNKNOWN_REASON,
                    advice="use an index built with --encoder char or --encoder student")


def _on_device(index: Any, device: str) -> Any:
    """The index searching on ``--device`` (a hybrid index: its dense half)."""
    dense = getattr(index, "dense", index)
    dense.use_device(device)
    return index


def _pick_ranking(index: Any, ranking: str | None) -> Any:
    """The index (or half of a hybrid index) that --ranking asks for."""
    from simtools.index.hybrid import HybridIndex

    if isinstance(index, HybridIndex):
        if ranking == "lexical":
            return index.lexical
        if ranking == "dense":
            return HybridIndex(index.lexical, index.dense, weight=0.0, depth=index.depth,
                               passage_words=index.passage_words)
        return index
    if ranking == "hybrid":
        what = "no dense vectors" if index.sparse else "no lexical (BM25) vectors"
        raise click.ClickException(f"this index has {what} to fuse; build one with "
                                   "`simtools index files ... --encoder hybrid`, or leave "
                                   "--ranking out")
    if ranking is not None:
        raise click.UsageError(f"--ranking {ranking} applies to an index built with --encoder "
                               "hybrid; leave it out for this one")
    return index
