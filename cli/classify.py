"""``simtools classify``: labels and probabilities for texts, from a model or an index."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click
import numpy as np

from .common import friendly_errors, read_texts

#: The label printed for a text the model cannot read (no letter of its training scripts).
UNKNOWN = "UNKNOWN"

# Texts per batch: one batch is written while the next is classified.
BATCH = 32_768


def _load(model_dir: str | None, index_dir: str | None,
          options: dict[str, Any]) -> tuple[Callable[[list[str]], Any], list[str]]:
    """The chosen classifier's ``predict_proba`` and its label names, loaded once."""
    if index_dir is None:
        # The student runtime is numpy-only: no scikit-learn, scipy or torch on this path.
        from simtools.classify.student import StudentClassifier, default_model_path

        model = StudentClassifier.load(model_dir or default_model_path())
        if options["allow_unknown"]:
            return (lambda texts: (model.predict_proba(texts), None)), list(model.labels)
        return model.predict_proba_known, list(model.labels)
    from simtools.classify.knn import index_classifier
    from simtools.index import Index

    index = Index.load(index_dir)
    if options["metric"]:
        index = index.with_metric(options["metric"])
    clf = index_classifier(index, mode=options["mode"], k=options["k"], weights=options["weights"])
    return (lambda texts: (clf.predict_proba(texts), None)), [str(c) for c in clf.classes_]


def _format(texts: list[str], proba: Any, labels: list[str], top_k: int, as_json: bool,
            known: Any = None) -> str:
    """Output lines; a text the model cannot read (``known`` False) gets the label UNKNOWN."""
    top_k = max(1, min(top_k, len(labels)))
    order = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]
    names = np.asarray(labels, dtype=object)
    if as_json:
        import json

        lines = []
        for i, (text, row, best) in enumerate(zip(texts, proba.tolist(), order)):
            record: dict[str, Any]
            if known is not None and not known[i]:
                record = {"text": text, "label": None, "probabilities": {},
                          "error": "no letter or digit in the scripts the model was trained on"}
            else:
                record = {"text": text, "label": labels[best[0]],
                          "probabilities": {labels[j]: round(row[j], 6) for j in best}}
            lines.append(json.dumps(record, ensure_ascii=False))
        return "\n".join(lines) + "\n"
    # Probabilities are printed with 3 decimals: look the strings up instead of formatting
    # every float (the formatting cost more than the model at 100k texts/s).
    columns = []
    for j in range(top_k):
        column_names = names[order[:, j]]
        best = _PERMILLE[np.rint(np.take_along_axis(proba, order[:, j:j + 1], axis=1)[:, 0] * 1000)
                         .astype(np.int64)]
        if known is not None and not known.all():
            column_names[~known] = UNKNOWN
            best[~known] = "-"
        columns += [column_names.tolist(), best.tolist()]
    columns.append(texts)
    return "\n".join(map("\t".join, zip(*columns))) + "\n"


_PERMILLE = np.array([f"{i / 1000:.3f}" for i in range(1001)], dtype=object)


@click.command("classify")
@click.argument("texts", nargs=-1, required=True)
@click.option("--model", "model_dir", type=click.Path(file_okay=False),
              help="A model folder from `simtools distill` [default: the bundled BBC News model].")
@click.option("--index", "index_dir", type=click.Path(file_okay=False),
              help="Classify by neighbours in this index instead of with a model.")
@click.option("--mode", type=click.Choice(["auto", "knn", "nearest"]), default="auto",
              show_default=True, help="With --index: k-NN vote, nearest document, or auto "
              "(nearest when each label has one document, e.g. Wikipedia pages).")
@click.option("-k", "k", type=int, default=10, show_default=True, help="With --index: voters.")
@click.option("--weights", type=click.Choice(["uniform", "distance"]), default="uniform",
              show_default=True, help="With --index: k-NN vote weights.")
@click.option("--metric", type=click.Choice(["cosine", "euclidean", "normalized_euclidean",
                                             "inner_product"]), default=None,
              help="With --index: rank under this metric [default: the index's own].")
@click.option("--top-k", type=int, default=None,
              help="Labels shown per text, most probable first [default: 1; all with --json].")
@click.option("--allow-unknown", is_flag=True,
              help="With a model: classify texts with no letter or digit in the scripts the model "
              "was trained on (e.g. Hangul or emoji only for an English model) instead of failing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text, one per line.")
@friendly_errors
def classify_command(texts: tuple[str, ...], model_dir: str | None, index_dir: str | None,
                     mode: str, k: int, weights: str, metric: str | None, top_k: int | None,
                     allow_unknown: bool, as_json: bool) -> None:
    """Label each TEXT ('-' reads one text per line from stdin).

    Without --model or --index it uses the bundled BBC News topic model (business,
    entertainment, politics, sports, tech), offline. Each output line is
    LABEL<TAB>PROBABILITY[<TAB>LABEL<TAB>PROBABILITY...]<TAB>TEXT. A text with no letter or
    digit in the scripts the model was trained on (Hangul for an English model, emoji only)
    is written as UNKNOWN<TAB>-, the others are still classified, and the exit status is 1.

    \b
    Examples:
      simtools classify "Shares fell after the bank cut its profit forecast"
      simtools classify --top-k 3 --json "The striker scored twice in the cup final"
      cat tweets.txt | simtools classify - --model my-model > labels.tsv
      simtools classify "great racket skills at the net" --index wiki-index
    """
    if model_dir and index_dir:
        raise click.UsageError("give either --model or --index, not both")
    if top_k is None:
        top_k = 1_000_000 if as_json else 1
    if top_k < 1:
        raise click.BadParameter(f"must be at least 1, got {top_k}", param_hint="--top-k")
    options = {"mode": mode, "k": k, "weights": weights, "metric": metric,
               "allow_unknown": allow_unknown}
    all_texts = read_texts(texts)
    predict, labels = _load(model_dir, index_dir, options)
    batches = [all_texts[i:i + BATCH] for i in range(0, len(all_texts), BATCH)]
    out = sys.stdout
    unknown: list[int] = []
    # A pipeline: the next batch is classified (numpy, off the GIL) while this one is written.
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(predict, batches[0])
        for i, batch in enumerate(batches):
            proba, known = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(predict, batches[i + 1])
            out.write(_format(batch, proba, labels, top_k, as_json, known))
            if known is not None:
                unknown.extend((np.flatnonzero(~known) + i * BATCH).tolist())
    out.flush()
    if unknown:
        # Every other text was classified and written; these are marked UNKNOWN in the output.
        first = all_texts[unknown[0]]
        raise click.ClickException(
            f"{len(unknown)} text(s) have no letter or digit in the scripts the model was trained "
            f"on (e.g. text {unknown[0] + 1}: {first[:40]!r}), so they are labelled {UNKNOWN}; "
            "use a model trained on that language, or --allow-unknown to classify them anyway")
