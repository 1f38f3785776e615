"""How much of "distilled beats hard labels" is the seed? Both students over several seeds.

For each TweetEval task, one teacher ensemble and one transfer set (the same as
``distill_tweeteval.py`` builds: the training split plus ``--max-unlabelled`` unlabelled tweets
from the other tasks), then the hard-label student (method ``none``) and the default distilled
student (``DistillConfig()``), each trained with every seed in ``--seeds``. Only the student's
seed changes (initial weights and batch order); seed 0 reproduces ``distill_tweeteval.py``'s
rows. Scores are the official metrics x100 on the validation splits.

Usage (from the repository root)::

    python benchmarks/distill_seeds.py                         # all six tasks, seeds 0,1,2
    python benchmarks/distill_seeds.py --tasks irony,emotion   # a few tasks
    python benchmarks/distill_seeds.py --quick                 # 600 training tweets per task

Writes ``benchmarks/results/distill_seeds[_quick].json``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import parser, print_table, write_json  # noqa: E402
from benchmarks._tweeteval import TASKS, load_task  # noqa: E402
from benchmarks.distill_tweeteval import unlabelled_pool  # noqa: E402


def run_task(name: str, args: argparse.Namespace) -> dict:
    from simtools.distill.config import DistillConfig, Method
    from simtools.distill.teacher import make_teacher
    from simtools.distill.trainer import prepare, train_student

    task = load_task(name, max_train=args.max_train, max_val=args.max_val, seed=0)
    pool = unlabelled_pool(task, args)
    started = time.perf_counter()
    teacher = make_teacher("default", seed=0)
    teacher.fit(task.train_texts, [task.labels[i] for i in task.train_y])
    base = DistillConfig(augment_copies=1)
    rows = {"none": replace(base, methods=(Method.NONE,)), "default": base}
    prepared = prepare(task.labelled_data(), list(rows.values()), teacher=teacher,
                       unlabelled=pool)
    scores: dict[str, list[float]] = {row: [] for row in rows}
    for seed in args.seeds:
        for row, config in rows.items():
            student = train_student(prepared, replace(config, seed=seed)).student
            pred = student.predict_logits(task.val_texts, strict=False).argmax(axis=1)
            scores[row].append(round(100 * task.score(pred), 2))
    none, default = np.array(scores["none"]), np.array(scores["default"])
    result = {"task": name, "n_train": len(task.train_texts), "n_val": len(task.val_texts),
              "n_unlabelled": len(pool), "seeds": list(args.seeds), "none": scores["none"],
              "default": scores["default"], "none_mean": round(float(none.mean()), 2),
              "default_mean": round(float(default.mean()), 2),
              "wins": int((default > none).sum()),
              "seconds": round(time.perf_counter() - started, 1)}
    print(f"{name}: hard labels {scores['none']}, distilled {scores['default']}", flush=True)
    return result


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS), help="comma list of TweetEval tasks")
    p.add_argument("--seeds", default="0,1,2", help="comma list of student seeds")
    p.add_argument("--max-train", type=int, default=None,
                   help="training tweets per task (default: all; quick 600)")
    p.add_argument("--max-val", type=int, default=None,
                   help="validation tweets per task (default: all; quick 300)")
    p.add_argument("--max-unlabelled", type=int, default=None,
                   help="unlabelled tweets per task (default 20000, quick 2000)")
    args = p.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.max_train = args.max_train or (600 if args.quick else 50_000)
    args.max_val = args.max_val or (300 if args.quick else 5_000)
    if args.max_unlabelled is None:
        args.max_unlabelled = 2_000 if args.quick else 20_000
    args.unlabelled, args.seed = "other-tasks", 0
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
              "hard labels": r["none"], "distilled": r["default"]} for r in per_task]
    print_table(table, list(table[0]), title="hard-label vs default distilled student, "
                                              "official metric x100 (validation)")
    if not args.no_json:
        write_json("distill_seeds" + ("_quick" if args.quick else ""),
                   {"command": " ".join(["python", *sys.argv]), "per_task": per_task,
                    "table": table})


if __name__ == "__main__":
    main()
