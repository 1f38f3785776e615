"""``simtools classify``: labels and probabilities for texts, from a model or an index."""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import click
import numpy as np

from simtools.classify.lines import EMPTY_CODE, UNKNOWN_CODE, format_lines, statuses

from .common import friendly_errors, read_texts, warn_unanswered

# Texts per batch: one batch is written while the next is classified.
BATCH = 32_768



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
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: classify the lines of the file INPUT on --workers Ray actors into "
                   "--out (pip install 'simtools[ray]'); with a model only.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="With --engine ray: actors, each holding the model once.")
@click.option("--ray-address", envvar="RAY_ADDRESS", default=None, metavar="HOST:PORT",
              help="With --engine ray: the cluster to join ($RAY_ADDRESS); without one, Ray "
                   "starts on this machine. INPUT must be readable at its path on every node.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="With --engine ray: the file to write the lines to (a new file; written in "
                   "full before it appears).")
@click.option("--force", is_flag=True, help="With --engine ray: replace an existing --out file.")
@friendly_errors
def classify_command(texts: tuple[str, ...], model_dir: str | None, index_dir: str | None,
                     mode: str, k: int, weights: str, metric: str | None, top_k: int | None,
                     allow_unknown: bool, target: str | None, as_json: bool, engine: str,
                     workers: int, ray_address: str | None, out: str | None,
                     force: bool) -> None:
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
      simtools classify --engine ray tweets.txt --out labels.tsv --workers 8
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
    if engine == "ray":
        _classify_on_ray(texts, model_dir, index_dir, out, force, options, top_k=top_k,
                         as_json=as_json, workers=workers, address=ray_address)
        return
    if out is not None:
        raise click.UsageError("--out is for --engine ray; without it the lines go to stdout "
                               "(redirect them: > labels.tsv)")
    all_texts = read_texts(texts, keep_blank=True)
    clf = _load(model_dir, index_dir, options)
    batches = [all_texts[i:i + BATCH] for i in range(0, len(all_texts), BATCH)]
    sink = sys.stdout
    unknown: list[int] = []
    empty: list[int] = []
    # A pipeline: the next batch is classified (numpy, off the GIL) while this one is written.
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(clf.predict, batches[0])
        for i, batch in enumerate(batches):
            proba, known = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(clf.predict, batches[i + 1])
            status = statuses(batch, known)
            sink.write(format_lines(batch, proba, clf.labels, top_k, as_json, status,
                                   clf.unknown_reason))
            unknown.extend((np.flatnonzero(status == UNKNOWN_CODE) + i * BATCH).tolist())
            empty.extend((np.flatnonzero(status == EMPTY_CODE) + i * BATCH).tolist())
    sink.flush()
    # Every line was written; those not classified are marked in the output, and counted here.
    warn_unanswered(all_texts, unknown, empty, verb="classified", reason=clf.unknown_reason,
                    advice=clf.advice)


def _classify_on_ray(texts: tuple[str, ...], model_dir: str | None, index_dir: str | None,
                     out: str | None, force: bool, options: dict[str, Any], *, top_k: int,
                     as_json: bool, workers: int, address: str | None) -> None:
    """``classify --engine ray INPUT --out OUTPUT``: every line of INPUT, one line in OUTPUT."""
    import os

    from simtools.classify.ray_file import classify_file_ray
    from simtools.engines.ray_session import import_ray

    if index_dir is not None:
        raise click.UsageError("--engine ray classifies with a model; leave --index out")
    if len(texts) != 1 or texts[0] == "-":
        raise click.UsageError("--engine ray classifies the lines of one file: give its path "
                               "as INPUT (not texts or '-'), e.g. classify --engine ray "
                               "tweets.txt --out labels.tsv")
    if out is None:
        raise click.UsageError("--engine ray writes to a file: give it with --out, e.g. "
                               "--out labels.tsv")
    if os.path.exists(out) and not force:
        raise click.UsageError(f"{out} exists; choose a new --out, or pass --force to replace it")
    import_ray()
    reason = ("no word or symbol the model can read" if options["allow_unknown"] else
              "no letter or digit in the scripts the model was trained on")
    advice = ("remove such lines or give them some words" if options["allow_unknown"] else
              "use a model trained on that language, or --allow-unknown")
    with click.progressbar(length=os.path.getsize(texts[0]), label="classifying",
                           file=sys.stderr) as bar:
        report = classify_file_ray(texts[0], out, model_dir=model_dir, target=options["target"],
                                   allow_unknown=options["allow_unknown"], top_k=top_k,
                                   as_json=as_json, unknown_reason=reason, workers=workers,
                                   address=address, on_bytes=bar.update)
    warn_unanswered(report.lines, report.unknown, report.empty, verb="classified",
                    reason=reason, advice=advice, example=report.first_unknown_text)
    click.echo(f"classified {report.lines} lines into {out}", err=True)
