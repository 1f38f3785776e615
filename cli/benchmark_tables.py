"""The tables ``simtools benchmark`` prints: scores first, then timings (which vary from run to
run), then what was sampled, skipped or noted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

__all__ = ["print_ann", "print_metrics", "print_search", "table"]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns, two spaces apart, on stdout."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    for cells in (header, *rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())


def _notes(report: Any) -> None:
    for note in report.notes:
        click.echo(f"note: {note}")
    for skipped in report.skipped:
        click.echo(f"skipped: {skipped.what}: {skipped.reason}")


def _plot(plot: str | None) -> None:
    if plot is not None:
        click.echo(f"plot: {plot}")


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def print_metrics(report: Any, source: str, max_docs: int | None, plot: str | None) -> None:
    sampled = ("" if report.sampled_from is None else
               f" sampled from {report.sampled_from:,} (--max-docs {max_docs}, seed {report.seed})")
    click.echo(f"{source}: {report.documents:,} documents{sampled}, {len(report.classes)} "
               f"classes; {report.k}-NN, {report.folds}-fold stratified cross-validation, "
               f"seed {report.seed}")
    best = {(r.encoder, r.metric) for r in report.best}
    rows = [[r.encoder, r.metric,
             f"{r.accuracy_mean:.3f} +- {r.accuracy_std:.3f}"
             + (" *" if (r.encoder, r.metric) in best else ""),
             f"{r.macro_f1_mean:.3f} +- {r.macro_f1_std:.3f}"] for r in report.results]
    table(["encoder", "metric", "accuracy", "macro-F1"], rows)
    if report.best:
        names = ", ".join(f"{r.encoder} + {r.metric}" for r in report.best)
        click.echo(f"best (*): {names} (accuracy {report.best[0].accuracy_mean:.3f})")
    _notes(report)
    unplaced = {r.encoder: r.unplaced for r in report.results if r.unplaced}
    if unplaced:
        click.echo("note: held-out texts an encoder cannot place (no token it knows) count as "
                   "wrong: " + ", ".join(f"{e} {n}" for e, n in unplaced.items()))
    if report.results:
        click.echo("\ntime per fold: build = fit, encode and index the training folds; "
                   "query = classify the held-out fold")
        table(["encoder", "metric", "build s", "query s", "queries/s"],
              [[r.encoder, r.metric, f"{sum(r.build_s) / len(r.build_s):.3f}",
                f"{sum(r.query_s) / len(r.query_s):.3f}", _rate(r.queries_per_s)]
               for r in report.results])
    _plot(plot)


def print_search(report: Any, source: str, index_dir: str | None, plot: str | None) -> None:
    scored = report.queries - report.unmatched_queries
    click.echo(f"{source}: {report.queries:,} queries ({scored:,} scored); every index "
               "searched to depth 10")
    best = {r.name for r in report.best}
    rows = [[r.name + (f" ({index_dir})" if r.build_s is None and index_dir else ""),
             f"{r.documents:,}", *(f"{r.scores[s]:.3f}" for s in r.scores),
             "*" if r.name in best else ""] for r in report.results]
    names = list(report.results[0].scores) if report.results else []
    table(["index", "documents", *(_short(n) for n in names), "best"], rows)
    _notes(report)
    unplaced = [f"{r.name} {r.unplaced}" for r in report.results if r.unplaced]
    if unplaced:
        click.echo("note: queries an index cannot place (no token it knows) find nothing: "
                   + ", ".join(unplaced))
    click.echo("\ntime: build = read, encode and index the documents; queries/s = search all "
               "the scored queries")
    table(["index", "build s", "queries/s"],
          [[r.name, "-" if r.build_s is None else f"{r.build_s:.2f}", _rate(r.queries_per_s)]
           for r in report.results])
    _plot(plot)


def _short(score: str) -> str:
    kind, _, k = score.partition("@")
    return {"mrr": "MRR", "recall": "R", "ndcg": "nDCG", "precision": "P"}.get(kind, kind) + "@" + k


def print_ann(report: Any, source: str, plot: str | None) -> None:
    click.echo(f"{source}: {report.database:,} vectors x {report.dim} ({report.metric}), "
               f"{report.queries:,} held-apart queries, recall@{report.k}")
    rows = [[r.method, r.knob, "" if r.value is None else str(r.value), f"{r.recall:.3f}",
             _rate(r.qps), f"{r.speedup:.2f}", f"{r.build_s:.2f}"] for r in report.rows]
    table(["method", "knob", "value", "recall", "queries/s", "x exact", "build s"], rows)
    top = report.fastest
    setting = "exact search" if top.method == "exact" else f"{top.method} {top.knob}={top.value}"
    missed = top.method == "exact" and len(report.rows) > 1 and not any(
        r.method != "exact" and r.recall >= report.recall_target for r in report.rows)
    reached = " (no ANN setting reached it)" if missed else ""
    click.echo(f"fastest reaching recall {report.recall_target}: {setting}{reached}, recall "
               f"{top.recall:.3f}, {_rate(top.qps)} queries/s, {top.speedup:.2f}x exact")
    _notes(report)
    _plot(plot)
