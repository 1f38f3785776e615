"""Pictures of the three benchmarks (matplotlib, from ``simtools[bench]``), written to a file.

- :func:`plot_metrics`: accuracy by metric, one bar per encoder, the fold spread as error bars.
- :func:`plot_search`: each score of each index, grouped by index.
- :func:`plot_ann`: recall@k against queries/s (log scale), one line per backend, each point
  labelled with its knob value; exact search and the recall target as reference lines.

The format follows the file's suffix (``.png``, ``.svg``, ``.pdf``, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .common import pyplot

__all__ = ["plot_ann", "plot_metrics", "plot_search"]


def _save(fig: Any, path: str | os.PathLike[str], plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_metrics(report: Any, path: str | os.PathLike[str]) -> Path:
    """Bars of mean accuracy, metric by encoder, with the standard deviation over folds."""
    plt = pyplot()
    metrics = list(dict.fromkeys(r.metric for r in report.results))
    encoders = list(dict.fromkeys(r.encoder for r in report.results))
    by = {(r.encoder, r.metric): r for r in report.results}
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(metrics) * max(1, len(encoders)) / 2), 4.5))
    width = 0.8 / max(1, len(encoders))
    x = np.arange(len(metrics))
    for i, encoder in enumerate(encoders):
        cells = [by.get((encoder, m)) for m in metrics]
        ax.bar(x + i * width, [c.accuracy_mean if c else 0 for c in cells], width,
               yerr=[c.accuracy_std if c else 0 for c in cells], capsize=3, label=encoder)
    ax.set_xticks(x + width * (len(encoders) - 1) / 2, [m.replace("_", "\n") for m in metrics])
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"accuracy ({report.folds}-fold mean, bars: spread)")
    ax.set_title(f"{report.k}-NN accuracy by metric and encoder ({report.documents:,} documents)",
                 fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path, plt)


def plot_search(report: Any, path: str | os.PathLike[str]) -> Path:
    """Grouped bars: every score of every index."""
    plt = pyplot()
    names = [r.name for r in report.results]
    scores = list(report.results[0].scores) if report.results else []
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(names) + 2), 4.5))
    width = 0.8 / max(1, len(scores))
    x = np.arange(len(names))
    for i, score in enumerate(scores):
        ax.bar(x + i * width, [r.scores[score] for r in report.results], width, label=score)
    ax.set_xticks(x + width * (len(scores) - 1) / 2, names, rotation=20, ha="right")
    ax.set_ylim(0, 1.15)  # room for the legend above the bars
    ax.set_ylabel("score")
    ax.set_title(f"search quality on {report.queries:,} queries", fontsize=10)
    ax.legend(fontsize=8, ncol=len(scores))
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path, plt)


def plot_ann(report: Any, path: str | os.PathLike[str]) -> Path:
    """Recall@k against queries/s: the recall/speed curve of every backend."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in dict.fromkeys(r.method for r in report.rows if r.method != "exact"):
        points = [r for r in report.rows if r.method == method]
        ax.plot([r.recall for r in points], [r.qps for r in points], "o-", label=method)
        for r in points:
            ax.annotate(str(r.value), (r.recall, r.qps), fontsize=7, textcoords="offset points",
                        xytext=(3, 3))
    ax.axhline(report.exact_qps, color="k", ls="--", lw=1,
               label=f"exact ({report.exact_qps:,.0f} q/s)")
    ax.axvline(report.recall_target, color="grey", ls=":", lw=1,
               label=f"recall target {report.recall_target}")
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{report.k}")
    ax.set_ylabel("queries per second (log)")
    ax.set_title(f"{report.database:,} x {report.dim} vectors ({report.metric}), "
                 f"{report.queries:,} held-apart queries; labels: ef_search / nprobe", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, path, plt)
