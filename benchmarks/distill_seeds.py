"""How much of "distilled beats hard labels" is the seed? Both students over several seeds.

For each TweetEval task, one teacher ensemble and one transfer set (the same as
``distill_tweeteval.py`` builds: the training split plus ``--max-unlabelled`` unlabelled tweets
from the other tasks), then the hard-label student (method ``none``) and the default distilled
student (``DistillConfig()``), each trained with every seed in ``--seeds``. Only the student's
seed changes (initial weights and batch order); seed 0 reproduces ``distill_tweeteval.py``'s
rows. Scores are the official metrics x100 on the validation splits.

The difference of the means comes with a paired bootstrap over the validation tweets
(``--resamples``): each resample scores all of both students' predictions on the same draw of
tweets. Its 95% interval says how much of the difference the choice of validation tweets
alone could produce, which more seeds cannot average away (emotion has 374 of them, 28 of
them "optimism").

``--folds K`` scores more tweets without touching the test splits: the training and validation
tweets are pooled and cut into K stratified folds; for each fold a teacher and both students
are trained on the other folds and predict the held-out one, so every tweet is scored once per
seed by models that never saw it. Writes ``distill_seeds_cvK[_quick].json`` / ``.png``.

Usage (from the repository root)::

    python benchmarks/distill_seeds.py                         # all six tasks, seeds 0-4
    python benchmarks/distill_seeds.py --tasks irony,emotion   # a few tasks
    python benchmarks/distill_seeds.py --quick                 # 600 training tweets per task
    python benchmarks/distill_seeds.py --tasks emotion,irony --folds 5 --seeds 0,1,2
                                        # score every train + val tweet out of fold instead
    python benchmarks/distill_seeds.py --replot                # redraw the plot from the JSON

Writes ``benchmarks/results/distill_seeds[_quick].json`` and the plot ``distill_seeds[_quick].png``
(every seed's score of both students, task by task).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import RESULTS, markdown_table, parser, print_table, write_json  # noqa: E402
from benchmarks._tweeteval import (  # noqa: E402
    METRIC_NAMES,
    TASKS,
    Task,
    add_pool_options,
    load_task,
    official_score,
    paired_bootstrap,
    pool_defaults,
    save_figure,
    unlabelled_pool,
)


def train_both(task: Task, pool: list[str], seeds: list[int]) -> dict[str, list[np.ndarray]]:
    """Fit the teacher on ``task``'s training split, then the hard-label (``none``) and the
    default distilled student once per seed; each one's predictions on ``task.val_texts``."""
    from simtools.distill.config import DistillConfig, Method
    from simtools.distill.teacher import make_teacher
    from simtools.distill.trainer import prepare, train_student

    teacher = make_teacher("default", seed=0)
    teacher.fit(task.train_texts, [task.labels[i] for i in task.train_y])
    base = DistillConfig(augment_copies=1)
    rows = {"none": replace(base, methods=(Method.NONE,)), "default": base}
    prepared = prepare(task.labelled_data(), list(rows.values()), teacher=teacher,
                       unlabelled=pool)
    preds: dict[str, list[np.ndarray]] = {row: [] for row in rows}
    for seed in seeds:
        for row, config in rows.items():
            student = train_student(prepared, replace(config, seed=seed)).student
            preds[row].append(student.predict_logits(task.val_texts, strict=False).argmax(axis=1))
    return preds


def folds_of(task: Task, k: int) -> list[Task]:
    """``k`` stratified folds over the training and validation tweets together: in fold i the
    i-th part is scored and the rest is trained on (seeded, so every run has the same folds)."""
    from sklearn.model_selection import StratifiedKFold

    texts = task.train_texts + task.val_texts
    y = np.concatenate([task.train_y, task.val_y])
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=0).split(texts, y)
    return [Task(name=task.name, labels=task.labels,
                 train_texts=[texts[i] for i in train], train_y=y[train],
                 val_texts=[texts[i] for i in held], val_y=y[held],
                 full_sizes=task.full_sizes) for train, held in split]


def run_task(name: str, args: argparse.Namespace) -> dict:
    task = load_task(name, max_train=args.max_train, max_val=args.max_val, seed=0)
    pool = unlabelled_pool(task, args)  # the same for every fold: it excludes train and val
    started = time.perf_counter()
    if not args.folds:
        scored_y, preds = task.val_y, train_both(task, pool, args.seeds)
    else:
        # Out-of-fold predictions, put back in order: every training and validation tweet is
        # scored once per seed, by students (and a teacher) that never saw it.
        folds = folds_of(task, args.folds)
        scored_y = np.concatenate([f.val_y for f in folds])
        per_fold = [train_both(f, pool, args.seeds) for f in folds]
        preds = {row: [np.concatenate([fold[row][s] for fold in per_fold])
                       for s in range(len(args.seeds))] for row in per_fold[0]}
    scores = {row: [round(100 * official_score(name, task.labels, scored_y, p), 2)
                    for p in preds[row]] for row in preds}
    none, default = np.array(scores["none"]), np.array(scores["default"])
    bootstrap = paired_bootstrap(name, task.labels, scored_y, preds["none"], preds["default"],
                                 n_resamples=args.resamples)
    result = {"task": name, "n_train": len(task.train_texts), "n_val": len(task.val_texts),
              "scored_on": (f"out-of-fold, {args.folds} folds over train + validation"
                            if args.folds else "validation"), "n_scored": len(scored_y),
              "n_unlabelled": len(pool), "seeds": list(args.seeds), "none": scores["none"],
              "default": scores["default"], "none_mean": round(float(none.mean()), 2),
              "default_mean": round(float(default.mean()), 2),
              "wins": int((default > none).sum()), "bootstrap": bootstrap,
              "seconds": round(time.perf_counter() - started, 1)}
    print(f"{name}: hard labels {scores['none']}, distilled {scores['default']}", flush=True)
    return result


def plot(per_task: list[dict], path: Path) -> None:
    """Per task: each seed's score of the hard-label and the distilled student, joined by a
    line (same seed), with each student's mean as a short black bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(per_task), figsize=(2.2 * len(per_task) + 1, 3.6))
    for ax, result in zip(np.atleast_1d(axes), per_task):
        none, default = result["none"], result["default"]
        ax.hlines([np.mean(none), np.mean(default)], [-0.25, 0.75], [0.25, 1.25], color="k",
                  lw=2)
        for a, b in zip(none, default):
            ax.plot([0, 1], [a, b], "o-", color="C0" if b > a else "C1", ms=4, lw=1)
        low, high = min(none + default), max(none + default)
        ax.set_ylim(low - 2, high + 1.5)
        ax.set_xlim(-0.5, 1.5)
        ax.set_xticks([0, 1], ["hard\nlabels", "distilled"])
        title = f"{result['task']}\n{result['wins']}/{len(none)} seeds won"
        if "bootstrap" in result:
            title += "\ndiff 95%: [{:+.1f}, {:+.1f}]".format(*result["bootstrap"]["ci95"])
        ax.set_title(title, fontsize=9)
        where = "val" if result.get("scored_on", "validation") == "validation" else "out-of-fold"
        ax.set_ylabel(f"{METRIC_NAMES[result['task']]} x100 ({where})", fontsize=8)
    fig.suptitle("hard-label vs default distilled student\none line per seed "
                 "(blue: distilled wins); black: means", fontsize=10)
    save_figure(fig, path)


def _seed_range(seeds: list[int]) -> str:
    contiguous = seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    return f"seeds {seeds[0]}-{seeds[-1]}" if contiguous and len(seeds) > 2 else \
        "seed" + ("s " if len(seeds) > 1 else " ") + ", ".join(map(str, seeds))


def readme_table(payload: dict[str, Any]) -> str:
    """The results table as the README quotes it, built from the JSON this script writes."""
    seeds = _seed_range(payload["per_task"][0]["seeds"])
    rows = []
    for r, t in zip(payload["per_task"], payload["table"], strict=True):
        rows.append([r["task"], r.get("n_scored", r["n_val"]),
                     " / ".join(f"{x:.2f}" for x in r["none"]), f"{r['none_mean']:.2f}",
                     " / ".join(f"{x:.2f}" for x in r["default"]), f"{r['default_mean']:.2f}",
                     f"{t['difference']:+.2f}", t["seeds won"], t["95% interval"],
                     t["resamples ahead"]])
    return markdown_table(["task", "tweets scored", f"hard labels, {seeds}", "mean",
                           f"distilled (default), {seeds}", "mean", "difference", "seeds won",
                           "95% interval", "resamples ahead"], rows)


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS), help="comma list of TweetEval tasks")
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma list of student seeds")
    p.add_argument("--max-train", type=int, default=None,
                   help="training tweets per task (default: all; quick 600)")
    p.add_argument("--max-val", type=int, default=None,
                   help="validation tweets per task (default: all; quick 300)")
    p.add_argument("--folds", type=int, default=0,
                   help="score out-of-fold predictions of K stratified folds over the training "
                        "and validation tweets together (K teachers and K x 2 x seeds students) "
                        "instead of the validation split alone; 0 (default) for the split")
    p.add_argument("--resamples", type=int, default=2000,
                   help="paired-bootstrap resamples of the validation tweets (default 2000)")
    add_pool_options(p)
    p.add_argument("--replot", action="store_true",
                   help="redraw the plot from the saved JSON; train nothing")
    args = p.parse_args()
    if args.folds == 1 or args.folds < 0:
        raise SystemExit(f"--folds needs 2 or more folds (or 0 for none), got {args.folds}")
    name = ("distill_seeds" + (f"_cv{args.folds}" if args.folds else "")
            + ("_quick" if args.quick else ""))
    if args.replot:
        saved = RESULTS / f"{name}.json"
        if not saved.is_file():
            raise SystemExit(f"{saved} does not exist; run the benchmark first")
        plot(json.loads(saved.read_text())["per_task"], RESULTS / f"{name}.png")
        return
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.max_train = args.max_train or (600 if args.quick else 50_000)
    args.max_val = args.max_val or (300 if args.quick else 5_000)
    pool_defaults(args)
    args.seed = 0  # the pool's seed; the students' seeds are --seeds
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown or not args.seeds:
        raise SystemExit(f"unknown tasks {unknown}; valid tasks are {', '.join(TASKS)}"
                         if unknown else "give at least one seed, e.g. --seeds 0,1,2")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    per_task = [run_task(name, args) for name in tasks]
    table = [{"task": r["task"], "hard labels (mean)": r["none_mean"],
              "distilled (mean)": r["default_mean"],
              "difference": round(r["default_mean"] - r["none_mean"], 2),
              "seeds won": f"{r['wins']}/{len(args.seeds)}",
              "95% interval": "[{:+.2f}, {:+.2f}]".format(*r["bootstrap"]["ci95"]),
              "resamples ahead": f"{100 * r['bootstrap']['share_b_ahead']:.1f}%",
              "hard labels": r["none"], "distilled": r["default"]} for r in per_task]
    scored_on = per_task[0]["scored_on"]
    print_table(table, list(table[0]), title="hard-label vs default distilled student, "
                                              f"official metric x100 ({scored_on})")
    payload = {"command": " ".join(["python", *sys.argv]), "per_task": per_task, "table": table}
    print(f"\nFor the README:\n{readme_table(payload)}")
    if not args.no_json:
        write_json(name, payload)
        plot(per_task, RESULTS / f"{name}.png")


if __name__ == "__main__":
    main()
