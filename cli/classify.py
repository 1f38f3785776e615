"""``simtools classify``: labels and probabilities for texts, from a model or an index."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import click
import numpy as np

from .common import EMPTY, EMPTY_REASON, UNKNOWN, friendly_errors, read_texts, warn_unanswered

# Texts per batch: one batch is written while the next is classified.
BATCH = 32_768

# Status of an input line: classified, UNKNOWN (the model cannot read it) or EMPTY.
_OK, _UNKNOWN, _EMPTY = 0, 1, 2
_STATUS_WORD = np.array(["", UNKNOWN, EMPTY], dtype=object)


@dataclass
class _Classifier:
    """The chosen classifier, loaded once: ``predict(texts) -> (probabilities, known)``."""

    predict: Callable[[list[str]], tuple[np.ndarray, np.ndarray]]
    labels: list[str]
    unknown_reason: str  # why a line is UNKNOWN
    advice: str  # what to do about UNKNOWN lines


def _load(model_dir: str | None, index_dir: str | None, options: dict[str, Any]) -> _Classifier:
    if index_dir is None:
        # The student runtime is numpy-only: no scikit-learn, scipy or torch on this path.
        from simtools.student.groups import GroupedStudents, load_model

        model: Any = load_model(model_dir)
        if isinstance(model, GroupedStudents) or options["target"] is not None:
            model = _one_target(model, options["target"])
        check = not options["allow_unknown"]
        predict = lambda texts: model.predict_proba_known(texts, check_scripts=check)  # noqa: E731
        if options["allow_unknown"]:
            return _Classifier(predict, list(model.labels), "no word or symbol the model can read",
                               "remove such lines or give them some words")
        return _Classifier(predict, list(model.labels),
                           "no letter or digit in the scripts the model was trained on",
                           "use a model trained on that language, or --allow-unknown")
    from simtools.classify.knn import index_classifier
    from simtools.index import Index

    index = Index.load(index_dir)
    if options["metric"]:
        index = index.with_metric(options["metric"])
    clf = index_classifier(index, mode=options["mode"], k=options["k"], weights=options["weights"])
    return _Classifier(clf.predict_proba_known, [str(c) for c in clf.classes_],
                       "no token this index's encoder knows",
                       "use an index built with --encoder char or --encoder student")


def _one_target(model: Any, target: str | None) -> Any:
    """The student of ``--target`` in a model of one student per target."""
    from simtools.student.groups import GroupedStudents

    if not isinstance(model, GroupedStudents):
        raise click.UsageError("--target is for a model of one student per target; this model "
                               "is one student for all texts: leave --target out")
    if target is None:
        raise click.UsageError(f"this model holds one student per target "
                               f"({', '.join(model.groups)}); choose one with --target NAME")
    return model.student(target)


def _status(texts: list[str], known: np.ndarray) -> np.ndarray:
    """int8 ``(n,)``: _OK, _UNKNOWN or _EMPTY for every text."""
    from simtools._validation import blank_mask

    status = np.where(known, _OK, _UNKNOWN).astype(np.int8)
    status[blank_mask(texts)] = _EMPTY
    return status


def _format(texts: list[str], proba: np.ndarray, labels: list[str], top_k: int, as_json: bool,
            status: np.ndarray, unknown_reason: str) -> str:
    """One output line per text; a text that was not classified gets UNKNOWN or EMPTY."""
    top_k = max(1, min(top_k, len(labels)))
    order = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]
    names = np.asarray(labels, dtype=object)
    if as_json:
        import json

        errors = {_UNKNOWN: f"{UNKNOWN}: {unknown_reason}", _EMPTY: f"{EMPTY}: {EMPTY_REASON}"}
        lines = []
        for text, row, best, code in zip(texts, proba.tolist(), order, status.tolist()):
            record: dict[str, Any]
            if code != _OK:
                record = {"text": text, "label": None, "probabilities": {}, "error": errors[code]}
            else:
                record = {"text": text, "label": labels[best[0]],
                          "probabilities": {labels[j]: round(row[j], 6) for j in best}}
            lines.append(json.dumps(record, ensure_ascii=False))
        return "\n".join(lines) + "\n"
    # Probabilities are printed with 3 decimals: look the strings up instead of formatting
    # every float (the formatting cost more than the model at 100k texts/s).
    columns = []
    failed = status != _OK
    for j in range(top_k):
        column_names = names[order[:, j]]
        permille = np.rint(np.take_along_axis(proba, order[:, j:j + 1], axis=1)[:, 0] * 1000)
        best = _PERMILLE[np.clip(permille.astype(np.int64), 0, 1000)]
        if failed.any():
            column_names[failed] = _STATUS_WORD[status[failed]]
            best[failed] = "-"
        columns += [column_names.tolist(), best.tolist()]
    columns.append(texts)
    out = "\n".join(map("\t".join, zip(*columns))) + "\n"
    if out.count("\n") != len(texts):  # a newline inside a text given as an argument
        columns[-1] = [text.replace("\n", "\\n") for text in texts]
        out = "\n".join(map("\t".join, zip(*columns))) + "\n"
    # A raw carriage return would end the line for readers with universal newlines.
    return out.replace("\r", "\\r") if "\r" in out else out


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
@click.option("--target", default=None, metavar="NAME",
              help="With a model of one student per target (`distill --data tweeteval/stance`): "
                   "the target every text is about, e.g. abortion.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text, one per line.")
@friendly_errors
def classify_command(texts: tuple[str, ...], model_dir: str | None, index_dir: str | None,
                     mode: str, k: int, weights: str, metric: str | None, top_k: int | None,
                     allow_unknown: bool, target: str | None, as_json: bool) -> None:
    """Label each TEXT ('-' reads one text per line from stdin).

    Without --model or --index it uses the bundled BBC News topic model (business,
    entertainment, politics, sports, tech), offline. Every input line gets one output line,
    in order: LABEL<TAB>PROBABILITY[<TAB>LABEL<TAB>PROBABILITY...]<TAB>TEXT, with a carriage
    return or newline in TEXT written as \\r or \\n. A line with nothing visible (blank,
    whitespace, control characters) is written as EMPTY<TAB>-; one the model cannot read (no
    letter or digit in the scripts it was trained on: Hangul for an English model, emoji
    only) or, with --index, with no token the index's encoder knows, as UNKNOWN<TAB>-. With
    --json such a line has "label": null and an "error". A warning on stderr counts them.

    \b
    Exit status:
      0    every line was written, EMPTY and UNKNOWN ones included
      1    an error (a message on stderr says what to fix)
      2    a usage error
      141  the reader of the output went away (e.g. | head), as for Unix tools

    \b
    Examples:
      simtools classify "Shares fell after the bank cut its profit forecast"
      simtools classify --top-k 3 --json "The striker scored twice in the cup final"
      cat tweets.txt | simtools classify - --model my-model > labels.tsv
      simtools classify "great racket skills at the net" --index wiki-index
      simtools classify --model stance --target atheism "Faith gives my life meaning"
    """
    if model_dir and index_dir:
        raise click.UsageError("give either --model or --index, not both")
    if target is not None and index_dir:
        raise click.UsageError("--target chooses the student of a model; leave it out with --index")
    if top_k is None:
        top_k = 1_000_000 if as_json else 1
    if top_k < 1:
        raise click.BadParameter(f"must be at least 1, got {top_k}", param_hint="--top-k")
    options = {"mode": mode, "k": k, "weights": weights, "metric": metric,
               "allow_unknown": allow_unknown, "target": target}
    all_texts = read_texts(texts, keep_blank=True)
    clf = _load(model_dir, index_dir, options)
    batches = [all_texts[i:i + BATCH] for i in range(0, len(all_texts), BATCH)]
    out = sys.stdout
    unknown: list[int] = []
    empty: list[int] = []
    # A pipeline: the next batch is classified (numpy, off the GIL) while this one is written.
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(clf.predict, batches[0])
        for i, batch in enumerate(batches):
            proba, known = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(clf.predict, batches[i + 1])
            status = _status(batch, known)
            out.write(_format(batch, proba, clf.labels, top_k, as_json, status, clf.unknown_reason))
            unknown.extend((np.flatnonzero(status == _UNKNOWN) + i * BATCH).tolist())
            empty.extend((np.flatnonzero(status == _EMPTY) + i * BATCH).tolist())
    out.flush()
    # Every line was written; those not classified are marked in the output, and counted here.
    warn_unanswered(all_texts, unknown, empty, verb="classified", reason=clf.unknown_reason,
                    advice=clf.advice)
