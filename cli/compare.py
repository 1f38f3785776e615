"""``simtools compare``: one query against candidates under Euclidean, cosine and normalised
Euclidean, side by side."""

from __future__ import annotations

import click

from .common import emit_json, friendly_errors


@click.command("compare")
@click.argument("query")
@click.argument("candidates", nargs=-1)
@click.option("--index", "index_dir", type=click.Path(file_okay=False),
              help="Compare with every document of this index instead of CANDIDATES.")
@click.option("--encoder", default="count", show_default=True,
              help="Encoder for CANDIDATES: count, tfidf, hashing, char, minilm, student.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@friendly_errors
def compare_command(query: str, candidates: tuple[str, ...], index_dir: str | None,
                    encoder: str, as_json: bool) -> None:
    """Show how each metric ranks CANDIDATES (or an index's documents) for QUERY.

    On raw counts (the default encoder) Euclidean distance favours the shortest text, whatever
    its topic; cosine similarity compares direction only and picks the topical one; normalised
    Euclidean ranks exactly as cosine. A '*' marks each metric's nearest candidate.

    \b
    Examples:
      simtools compare "what a goal in the final minute" \\
          "football is a team sport; players score a goal ... (a long text)" \\
          "tennis is a racket sport"
      simtools compare --index wiki-index "great racket skills at the net" --json
    """
    from simtools.compare import COMPARED, compare_index, compare_texts

    if index_dir is not None:
        if candidates:
            raise click.UsageError("give either CANDIDATES or --index, not both")
        from simtools.index import Index

        result = compare_index(Index.load(index_dir), query)
        key = "title"
    else:
        if not candidates:
            raise click.UsageError("give at least one CANDIDATE text, or --index DIR")
        result = compare_texts(query, list(candidates), encoder)
        key = "text"
    if as_json:
        emit_json(result.to_dict(key=key))
        return
    nearest = result.nearest
    click.echo(f"query: {query}")
    header = f"{'#':>3}  {'length':>7}  {'euclidean':>10}  {'cosine':>8}  {'norm.eucl.':>10}  {key}"
    click.echo(header)
    for i, name in enumerate(result.names):
        cells = []
        for metric, width in zip(COMPARED, (10, 8, 10)):
            mark = "*" if nearest[metric] == i else " "
            cells.append(f"{result.scores[metric][i]:{width - 1}.3f}{mark}")
        short = name.replace("\n", " ").replace("\r", " ")
        short = short if len(short) <= 60 else short[:57] + "..."
        click.echo(f"{i:>3}  {result.lengths[i]:7.2f}  {'  '.join(cells)}  {short}")
    picks = ", ".join(f"{metric} -> #{i}" for metric, i in nearest.items())
    click.echo(f"nearest: {picks}  (euclidean: lower is nearer; cosine and normalised: higher)")
