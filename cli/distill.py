"""`simtools distill` (train a student from a teacher) and `simtools evaluate` (score a model)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
from simtools_cli.common import emit_json, encoding_option, friendly_errors, in_flags, progress
from simtools_cli.output import OUT_HELP, check_out, force_option

__all__ = ["distill_command", "evaluate_command"]


def _floats(value: str, name: str) -> list[float]:
    try:
        out = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected a number or a comma-separated list such as 1,2,4; "
                                 f"got {value!r}", param_hint=name) from None
    if not out:
        raise click.BadParameter(f"give at least one value, e.g. {name} 4", param_hint=name)
    return out


def _check_option(flag: str, field: str, value: Any) -> None:
    """``DistillConfig``'s check of one setting, reported as a bad value of its flag."""
    from simtools.distill.config import DistillConfig

    try:
        DistillConfig(**{field: value})
    except ValueError as e:
        message = str(e)
        # "temperature must be ..." -> "Invalid value for '--temperature': must be ..."
        message = message[len(field) + 1:] if message.startswith(field + " ") else message
        raise click.BadParameter(message, param_hint=f"'{flag}'") from None


def _method_sets(methods: tuple[str, ...]) -> list[tuple[Any, ...]]:
    from simtools.distill.config import DEFAULT_METHODS, parse_methods

    try:
        return [parse_methods(m) for m in methods] or [DEFAULT_METHODS]
    except ValueError as e:
        raise click.BadParameter(in_flags(str(e)), param_hint="'--method'") from None


def _check_teacher(spec: str, method_sets: list[tuple[Any, ...]], seed: int, *,
                   default_methods: bool) -> None:
    """Fail now, not after the teacher is fitted, on a bad --teacher, a missing model package,
    or a teacher that cannot give what --method asks for."""
    from simtools.distill.config import Method
    from simtools.distill.teacher import make_teacher

    if all(methods == (Method.NONE,) for methods in method_sets):
        return  # the hard-label baseline never runs a teacher
    try:
        probe = make_teacher(spec, seed=seed, cache_dir=False)  # unfitted: cheap
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--teacher'") from None
    except ImportError as e:
        raise click.UsageError(f"--teacher {spec} needs the sentence-embedding models: {e}; "
                               "or use --teacher sparse (n-gram members only)") from None
    if any(Method.EMBEDDING in methods for methods in method_sets):
        try:
            probe.embedding_source()
        except ValueError:
            default = " (part of the default, soft,embedding)" if default_methods else ""
            raise click.UsageError(
                f"--method embedding{default} regresses the teacher's sentence embeddings, but "
                f"--teacher {spec} has no sentence-embedding member; use --method soft (or "
                "another method without embedding), or --teacher default, or add minilm-lr "
                "to the --teacher spec") from None


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Log lines to whatever ``sys.stderr`` is when they are written (a test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.setStream(sys.stderr)
        super().emit(record)


def _setup_logging(quiet: bool) -> None:
    logger = logging.getLogger("simtools")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def _bar(iterable: Any, *, length: int | None = None, label: str = "") -> Any:
    return progress(iterable, length=length, label=label)


@click.command("distill")
@click.option("--data", "data_path", required=True,
              help="Labelled data: a TweetEval folder, class subfolders of .txt files, a "
                   "CSV/TSV/JSONL file with text and label columns, or 'bbc-news'.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help=OUT_HELP.format(kind="model"))
@force_option
@click.option("--method", "methods", multiple=True,
              help="Distillation methods, comma-combined: none, soft, logits, noisy, "
                   "compression, embedding. Repeat the option to compare several "
                   "combinations (a sweep). Default: soft,embedding.")
@click.option("--temperature", default="4", show_default=True,
              help="Soft-target temperature T; a comma list (1,2,4,8,20) sweeps.")
@click.option("--alpha", default="0.5", show_default=True,
              help="Weight of the soft targets (1 - alpha on the hard labels); a list sweeps.")
@click.option("--epochs", default=5, show_default=True, type=int)
@click.option("--dim", default=64, show_default=True, type=int,
              help="Length of the pooled n-gram vector.")
@click.option("--buckets", default=1 << 17, show_default=True, type=int,
              help="Rows of the hashed n-gram table (a power of two).")
@click.option("--embedding-dim", default=64, show_default=True, type=int,
              help="Length of the student's output embedding (method 'embedding').")
@click.option("--teacher", default="default", show_default=True,
              help="Teacher spec: 'default' (MiniLM + paraphrase-MiniLM + n-gram models) or "
                   "'sparse' (n-gram models only: fast, no sentence embeddings).")
@click.option("--lr", default=0.05, show_default=True, type=float, help="Learning rate.")
@click.option("--lr-schedule", type=click.Choice(["constant", "linear"]), default=None,
              help="Hold the learning rate, or let it fall linearly to zero (fastText's way). "
                   "Default: the DistillConfig default.")
@click.option("--augment-copies", default=2, show_default=True, type=int,
              help="Perturbed copies of each text (method 'compression').")
@click.option("--unlabelled", multiple=True, type=click.Path(exists=True),
              help="Unlabelled in-domain texts: the teacher labels them and every distilled "
                   "student (all methods but 'none') learns from them. A text file (one text "
                   "per line), a CSV/TSV/JSONL file (its text column), a TweetEval folder (its "
                   "training texts) or a folder of them; repeat for several. Texts of --data "
                   "itself are left out.")
@click.option("--max-unlabelled", type=click.IntRange(min=0), default=None,
              help="Keep a random sample (seeded by --seed) of this many unlabelled texts. "
                   "Default: all.")
@click.option("--pool-targets", is_flag=True,
              help="With one folder per target in --data (TweetEval's stance task): train one "
                   "student for all targets. Default: one student per target, in one model "
                   "folder (it scored higher on the validation split: docs/distillation.md).")
@click.option("--no-quantize", is_flag=True, help="Keep the embedding table float32 (not int8).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Where a sweep saves its plot (default: OUT/sweep.png).")
@click.option("--quiet", is_flag=True, help="No per-epoch log lines on stderr.")
@encoding_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@friendly_errors
def distill_command(data_path: str, out: str, force: bool, methods: tuple[str, ...], temperature: str,
                    alpha: str, epochs: int, dim: int, buckets: int, embedding_dim: int,
                    teacher: str, lr: float, lr_schedule: str | None, augment_copies: int,
                    unlabelled: tuple[str, ...], max_unlabelled: int | None,
                    pool_targets: bool, no_quantize: bool, seed: int, plot_path: str | None, quiet: bool,
                    encoding: str | None, as_json: bool) -> None:
    """Train a small, fast student from a teacher ensemble and save it to OUT.

    Several values of --method, --temperature or --alpha train one student per setting
    (sharing one teacher), print a table, save a plot and keep the best student.

    \b
    Examples:
      simtools distill --data bbc-news --out models/bbc
      simtools distill --data tweeteval/emotion --out emo --temperature 1,2,4,8,20
      simtools distill --data news.csv --out m --method none --method soft,embedding
      simtools distill --data tweeteval/irony --out irony --unlabelled tweeteval \\
          --max-unlabelled 20000
      simtools distill --data tweeteval/stance --out stance   # a student per target
    """
    from simtools.data import load_labelled
    from simtools.distill.config import DistillConfig, describe_setting
    from simtools.distill.report import best_result, plot_sweep, sweep_row, sweep_rows

    # Every option is checked here, before the data is read or a teacher is fitted.
    temps, alphas = _floats(temperature, "--temperature"), _floats(alpha, "--alpha")
    method_sets = _method_sets(methods)
    for flag, field, values in (("--temperature", "temperature", temps),
                                ("--alpha", "alpha", alphas), ("--epochs", "epochs", [epochs]),
                                ("--dim", "dim", [dim]), ("--buckets", "buckets", [buckets]),
                                ("--embedding-dim", "embedding_dim", [embedding_dim]),
                                ("--lr", "lr", [lr]), ("--augment-copies", "augment_copies",
                                                       [augment_copies]),
                                ("--seed", "seed", [seed])):
        for value in values:
            _check_option(flag, field, value)
    if max_unlabelled is not None and not unlabelled:
        raise click.UsageError("--max-unlabelled samples the texts of --unlabelled; give "
                               "--unlabelled FILE or FOLDER too")
    _check_teacher(teacher, method_sets, seed, default_methods=not methods)
    _check_plotting(len(method_sets) * len(temps) * len(alphas))
    base = DistillConfig(methods=method_sets[0], temperature=temps[0], alpha=alphas[0],
                         epochs=epochs, dim=dim, buckets=buckets, embedding_dim=embedding_dim,
                         teacher=teacher, lr=lr, augment_copies=augment_copies,
                         quantize=not no_quantize, seed=seed,
                         lr_schedule=lr_schedule or DistillConfig.lr_schedule)
    _setup_logging(quiet or as_json)
    check_out(out, kind="model", force=force)  # before hours of training, not after
    data = load_labelled(data_path, encoding=encoding)
    extra = _unlabelled(unlabelled, data, max_unlabelled, seed, encoding,
                        quiet=quiet or as_json)
    results = _train(data, base, method_sets, temps, alphas, extra, pool_targets)
    best = best_result(results)
    best.student.config["data"] = {"source": data_path, "train_n": len(data.train),
                                   "val_n": len(data.val),
                                   "val_split": "the split load_labelled(--data) makes"}
    rows = sweep_rows(results)
    if len(results) > 1:
        best.student.config["sweep"] = rows
    best.student.save(out, force=force)
    plot_file = None
    if len(results) > 1:
        plot_file = Path(plot_path) if plot_path else Path(out) / "sweep.png"
        plot_sweep(rows, plot_file)
    if as_json:
        emit_json({"out": out, "best": sweep_row(best), "summary": best.summary, "sweep": rows,
                   "plot": str(plot_file) if plot_file else None})
        return
    if len(results) > 1:
        _print_sweep(rows, plot_file)
    s = best.summary
    teacher_f1 = s.get("teacher", {}).get("val_macro_f1")
    setting = describe_setting(s["methods"], s["temperature"], s["alpha"])
    click.echo(f"saved student ({setting}) to {out}: val macro-F1 {s['val_macro_f1']:.4f}, accuracy "
               f"{s['val_accuracy']:.4f}"
               + (f" (teacher {teacher_f1:.4f})" if teacher_f1 else ""))


def _check_plotting(runs: int) -> None:
    """A sweep (more than one run) saves a plot: matplotlib must be there before training."""
    if runs > 1:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise click.UsageError('a sweep saves a plot, which needs matplotlib: pip install '
                                   '"simtools[bench]"; or give one value of --method, '
                                   '--temperature and --alpha') from None


def _train(data: Any, base: Any, method_sets: list[Any], temps: list[float], alphas: list[float],
           extra: list[str] | None, pool_targets: bool) -> list[Any]:
    """The sweep: one student per setting, or one per setting and target."""
    from simtools.distill.groups import sweep_by_group
    from simtools.distill.trainer import sweep

    train = sweep if pool_targets or not data.groups else sweep_by_group
    return train(data, base, methods=method_sets, temperatures=temps, alphas=alphas,
                 unlabelled=extra, progress=_bar)


def _unlabelled(sources: tuple[str, ...], data: Any, limit: int | None, seed: int,
                encoding: str | None, *, quiet: bool) -> list[str] | None:
    """The --unlabelled texts (minus those of --data), or None without --unlabelled."""
    from simtools.data import load_unlabelled

    if not sources:
        return None
    extra = load_unlabelled(list(sources), exclude=data, limit=limit, seed=seed,
                            encoding=encoding)
    if not quiet:
        click.echo(f"unlabelled texts: {len(extra):,} (from {', '.join(sources)})", err=True)
    return extra


def target_of_texts(model: Any, target: str | None, groups: list[str] | None) -> Any:
    """What a model of one student per target needs: ``--target``, else each text's group."""
    from simtools.student.groups import GroupedStudents

    if not isinstance(model, GroupedStudents):
        if target is not None:
            raise click.UsageError("--target is for a model of one student per target; this "
                                   "model is one student for all texts: leave --target out")
        return None
    if target is not None:
        return target
    if groups is None:
        raise click.UsageError(f"this model holds one student per target "
                               f"({', '.join(model.groups)}); give --target NAME")
    return groups


def _print_sweep(rows: list[dict[str, Any]], plot_file: Path | None) -> None:
    """The sweep's table: one line per setting."""
    click.echo(f"{'methods':<28} {'T':>6} {'alpha':>6} {'val F1':>7} {'val acc':>7} {'kNN@10':>7}")
    for row in rows:
        recall = row["val_knn_recall_at_10"]
        soft = "soft" in row["methods"].split(",")  # T and alpha apply to soft targets only
        t, a = (f"{row['temperature']:g}", f"{row['alpha']:g}") if soft else ("-", "-")
        click.echo(f"{row['methods']:<28} {t:>6} {a:>6} "
                   f"{row['val_macro_f1']:>7.4f} {row['val_accuracy']:>7.4f} "
                   f"{'-' if recall is None else format(recall, '.3f'):>7}")
    click.echo(f"plot: {plot_file}")


@click.command("evaluate")
@click.option("--model", "model_path", type=click.Path(),
              help="A student model folder (default: the bundled BBC News model).")
@click.option("--data", "data_path", required=True,
              help="Labelled data (same forms as `simtools distill --data`).")
@click.option("--split", type=click.Choice(["val", "test", "all"]), default="val", show_default=True,
              help="The texts scored. val: the held-out part (a TweetEval task's val split; "
                   "for a table or class folders, the 10% of each label that `distill` held "
                   "out); test: a TweetEval task's test split; all: every row of the data, "
                   "for a labelled file the model was not trained on.")
@click.option("--f1-of", "f1_of", default=None, metavar="LABEL[,LABEL...]",
              help="Also report the mean F1 of these labels, e.g. 'irony' (TweetEval irony's "
                   "official score) or 'favor,against' (stance's).")
@click.option("--target", default=None, metavar="NAME",
              help="With a model of one student per target: the target of every text "
                   "[default: each text's folder, for --data with one folder per target].")
@encoding_option
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
@friendly_errors
def evaluate_command(model_path: str | None, data_path: str, split: str, f1_of: str | None,
                     target: str | None, encoding: str | None, as_json: bool) -> None:
    """Accuracy, macro-F1 and the confusion matrix of a model on labelled data.

    \b
    Examples:
      simtools evaluate --model simtools/models/bbc-news --data bbc-news
      simtools evaluate --model emo --data tweeteval/emotion --json
      simtools evaluate --model irony --data tweeteval/irony --split test --f1-of irony
      simtools evaluate --data held-out.csv --split all
      simtools evaluate --model stance --data tweeteval/stance --f1-of favor,against
    """
    from simtools.data import load_labelled
    from simtools.errors import InputError
    from simtools.evaluation import evaluate_classifier
    from simtools.student.groups import load_model

    model = load_model(model_path)
    part = load_labelled(data_path, encoding=encoding).split(split)
    if len(part) == 0:
        # A score of nothing would read as accuracy 0.0000 and pass in a script.
        raise click.ClickException(
            f"the {split} split of {data_path} holds no texts, so there is nothing to score "
            "(a table or class folders hold out 10% of each label that has at least 2 texts); "
            "give more labelled texts, or choose another --split")
    chosen = None if f1_of is None else [n.strip() for n in f1_of.split(",") if n.strip()]
    try:
        scores = evaluate_classifier(model, part.texts, part.labels, f1_of=chosen,
                                     groups=target_of_texts(model, target, part.groups))
    except InputError as e:
        if chosen is not None and "f1_of" in str(e):
            raise click.UsageError(f"--f1-of takes labels of the model, comma-separated; {e}") from None
        raise click.ClickException(f"the {split} split of {data_path}: {e}") from None
    if as_json:
        emit_json(scores)
        return
    click.echo(f"{split}: n {scores['n']}, accuracy {scores['accuracy']:.4f}, "
               f"macro-F1 {scores['macro_f1']:.4f}")
    if "f1_of" in scores:
        click.echo(f"mean F1 of {', '.join(scores['f1_of']['labels'])}: "
                   f"{scores['f1_of']['mean_f1']:.4f}")
    width = max(8, *(len(name) for name in model.labels))
    click.echo("confusion matrix (rows: true, columns: predicted), and each label's F1")
    click.echo(" " * width + " " + " ".join(f"{name[:width]:>{width}}" for name in model.labels)
               + f" {'F1':>{width}}")
    for name, counts, f1 in zip(model.labels, scores["confusion_matrix"],
                                scores["f1_per_class"], strict=True):
        click.echo(f"{name:<{width}} " + " ".join(f"{c:>{width}}" for c in counts)
                   + f" {f1:>{width}.4f}")
