"""Sweep the soft-target temperature T and the soft/hard weight alpha of the distilled student.

Hinton, Vinyals & Dean (2015) distil with ``alpha * T^2 * CE(softmax(z_t/T), softmax(z_s/T)) +
(1 - alpha) * CE(y, softmax(z_s))``, report T from 2 to 20 (lower for very small students) and
a hard-label weight around 0.5, and leave the choice of T to a sweep. This is that sweep, on two
TweetEval tasks: T in {1, 2, 4, 8, 20} x alpha in {0.1, 0.5, 0.9}, the student trained with the
default method combination (``DistillConfig().methods``) on one teacher-labelled transfer set
per task, each cell the mean over ``--seeds`` training seeds, scored with the task's official
metric on its validation split. The hard-label student (method ``none``) is trained with the
same seeds as the reference.

Usage (from the repository root)::

    python benchmarks/distill_sweep.py            # emotion and irony, 1000 tweets, 1 seed
    python benchmarks/distill_sweep.py --quick    # 600 tweets, 1 seed, 5 epochs

Writes ``benchmarks/results/distill_sweep[_quick].json`` and a heat map ``.png``.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import RESULTS, markdown_table, parser, print_table, write_json  # noqa: E402
from benchmarks._tweeteval import METRIC_NAMES, TASKS, load_task, save_figure, size_defaults  # noqa: E402

logger = logging.getLogger("distill_sweep")

TEMPERATURES = (1.0, 2.0, 4.0, 8.0, 20.0)
ALPHAS = (0.1, 0.5, 0.9)


def sweep_task(name: str, args: Any) -> dict[str, Any]:
    from simtools.distill.config import DistillConfig, Method
    from simtools.distill.teacher import make_teacher
    from simtools.distill.trainer import prepare, train_student

    task = load_task(name, max_train=args.max_train, max_val=args.max_val, seed=0)
    base = DistillConfig(teacher=args.teacher, seed=0)
    if args.epochs:
        base = replace(base, epochs=args.epochs)
    methods = DistillConfig().methods if args.methods == "default" else args.methods
    base = replace(base, methods=methods)
    started = time.perf_counter()
    teacher = make_teacher(args.teacher, seed=0)
    teacher.fit(task.train_texts, [task.labels[i] for i in task.train_y])
    prepared = prepare(task.labelled_data(), [base, replace(base, methods=(Method.NONE,))],
                       teacher=teacher)
    columns = [teacher.labels.index(lab) for lab in task.labels]
    teacher_score = task.score(
        np.asarray(teacher.predict_logits(task.val_texts))[:, columns].argmax(axis=1))
    logger.info("%s: teacher ready in %.0f s (score %.4f)", name, time.perf_counter() - started,
                teacher_score)

    def score(config: Any) -> float:
        student = train_student(prepared, config).student
        return task.score(student.predict_logits(task.val_texts, strict=False).argmax(axis=1))

    seeds = list(range(args.seeds))
    # the hard-label reference gets at least 3 seeds: its spread is the noise scale of a cell
    hard = [score(replace(base, methods=(Method.NONE,), seed=s))
            for s in range(max(3, args.seeds))]
    grid = np.zeros((len(TEMPERATURES), len(ALPHAS), len(seeds)))
    for i, t in enumerate(TEMPERATURES):
        for j, a in enumerate(ALPHAS):
            for k, s in enumerate(seeds):
                grid[i, j, k] = score(replace(base, temperature=t, alpha=a, seed=s))
            logger.info("%s T=%g alpha=%g: %s", name, t, a, np.round(grid[i, j], 4).tolist())
    return {"task": name, "metric": METRIC_NAMES[name], "n_train": len(task.train_texts),
            "n_val": len(task.val_texts), "methods": ",".join(m.value for m in base.methods),
            "epochs": base.epochs, "teacher_score": teacher_score, "hard_label_scores": hard,
            "scores": grid.tolist(), "mean": grid.mean(axis=2).tolist(),
            "seconds": round(time.perf_counter() - started, 1)}


def summarise(results: list[dict[str, Any]], default_t: float, default_a: float) -> dict[str, Any]:
    """The best cell of the mean over tasks, and how the default setting compares with it."""
    mean = np.mean([np.asarray(r["mean"]) for r in results], axis=0)
    # noise scale: the seed-to-seed spread of the hard-label student (>= 3 seeds), averaged
    # over tasks; a cell's mean over tasks has about this spread divided by sqrt(tasks)
    spread = float(np.mean([np.std(r["hard_label_scores"], ddof=1) for r in results]))
    i, j = np.unravel_index(int(np.argmax(mean)), mean.shape)
    di, dj = TEMPERATURES.index(default_t), ALPHAS.index(default_a)
    hard = float(np.mean([np.mean(r["hard_label_scores"]) for r in results]))
    return {
        "mean_over_tasks": mean.tolist(),
        "best": {"temperature": TEMPERATURES[i], "alpha": ALPHAS[j], "score": float(mean[i, j])},
        "default": {"temperature": default_t, "alpha": default_a, "score": float(mean[di, dj])},
        "default_gap": float(mean[i, j] - mean[di, dj]),
        "seed_std": spread,
        "hard_label_mean": hard,
        "cells_above_hard_label": int((mean > hard).sum()),
        "best_alpha_per_temperature": {str(t): ALPHAS[int(np.argmax(mean[k]))]
                                       for k, t in enumerate(TEMPERATURES)},
    }


def plot(results: list[dict[str, Any]], summary: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"{r['task']} ({r['metric']})", np.asarray(r["mean"]), np.mean(r["hard_label_scores"]))
              for r in results]
    panels.append(("mean over tasks", np.asarray(summary["mean_over_tasks"]),
                   summary["hard_label_mean"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2))
    for ax, (name, grid, hard) in zip(axes, panels, strict=True):
        image = ax.imshow(100 * grid, cmap="viridis", aspect="auto")
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                ax.text(j, i, f"{100 * grid[i, j]:.1f}", ha="center", va="center",
                        color="white" if grid[i, j] < grid.mean() else "black", fontsize=9)
        d = summary["default"]
        ax.add_patch(plt.Rectangle((ALPHAS.index(d["alpha"]) - 0.5,
                                    TEMPERATURES.index(d["temperature"]) - 0.5), 1, 1,
                                   fill=False, edgecolor="red", linewidth=2))
        ax.set_xticks(range(len(ALPHAS)), [str(a) for a in ALPHAS])
        ax.set_yticks(range(len(TEMPERATURES)), [f"{t:g}" for t in TEMPERATURES])
        ax.set_xlabel("alpha (weight of the soft targets)")
        ax.set_ylabel("temperature T")
        ax.set_title(f"{name}\nhard labels only: {100 * hard:.1f}", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(title + " (red: the default)", fontsize=10)
    save_figure(fig, path)


def _grid(temperatures: list[float], alphas: list[float], scores: Any) -> str:
    return markdown_table(["T", *[f"alpha={a}" for a in alphas]],
                          [[f"{t:g}", *(round(100 * scores[i][j], 2) for j in range(len(alphas)))]
                           for i, t in enumerate(temperatures)])


def readme_tables(payload: dict[str, Any]) -> str:
    """The sweep's tables as the README quotes them (one per task, then the mean over the
    tasks), built from the JSON this script writes."""
    temperatures, alphas = payload["temperatures"], payload["alphas"]
    blocks = []
    for r in payload["tasks"]:
        hard = r["hard_label_scores"]
        blocks.append(f"{r['task']} ({r['metric']} x100; teacher ensemble "
                      f"{100 * r['teacher_score']:.2f}; hard labels only, mean of {len(hard)} "
                      f"seeds: {100 * float(np.mean(hard)):.2f})\n\n"
                      + _grid(temperatures, alphas, r["mean"]))
    blocks.append(f"mean over the {len(payload['tasks'])} tasks\n\n"
                  + _grid(temperatures, alphas, payload["summary"]["mean_over_tasks"]))
    return "\n\n".join(blocks)


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--tasks", default="emotion,irony")
    p.add_argument("--methods", default="default",
                   help="student methods, e.g. soft or soft,embedding (default: DistillConfig's)")
    p.add_argument("--seeds", type=int, default=1, help="training seeds per cell")
    p.add_argument("--max-train", type=int, default=None, help="default 1000, quick 600")
    p.add_argument("--max-val", type=int, default=None, help="default 1000, quick 300")
    p.add_argument("--epochs", type=int, default=None, help="default DistillConfig's; quick 5")
    p.add_argument("--teacher", default="default")
    args = p.parse_args()
    quick = args.quick
    size_defaults(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from simtools.distill.config import DistillConfig

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if set(tasks) - set(TASKS):
        raise SystemExit(f"unknown tasks {sorted(set(tasks) - set(TASKS))}; valid: {TASKS}")
    started = time.perf_counter()
    results = [sweep_task(name, args) for name in tasks]
    default = DistillConfig()
    summary = summarise(results, default.temperature, default.alpha)
    mode = "quick" if quick else "full"
    for r in results:
        rows = [{"T": f"{t:g}", **{f"alpha={a}": round(100 * r["mean"][i][j], 2)
                                   for j, a in enumerate(ALPHAS)}}
                for i, t in enumerate(TEMPERATURES)]
        print_table(rows, ["T", *[f"alpha={a}" for a in ALPHAS]],
                    title=f"{r['task']} ({r['metric']} x100, validation, mean of {args.seeds} "
                          f"seed(s); methods {r['methods']}; teacher "
                          f"{100 * r['teacher_score']:.2f}; hard labels only "
                          f"{100 * np.mean(r['hard_label_scores']):.2f})")
    rows = [{"T": f"{t:g}", **{f"alpha={a}": round(100 * summary["mean_over_tasks"][i][j], 2)
                               for j, a in enumerate(ALPHAS)}} for i, t in enumerate(TEMPERATURES)]
    print_table(rows, ["T", *[f"alpha={a}" for a in ALPHAS]], title="mean over tasks")
    b, d = summary["best"], summary["default"]
    print(f"\nbest: T={b['temperature']:g}, alpha={b['alpha']} ({100 * b['score']:.2f}); "
          f"default T={d['temperature']:g}, alpha={d['alpha']}: {100 * d['score']:.2f} "
          f"(gap {100 * summary['default_gap']:.2f}; seed-to-seed std of one student "
          f"{100 * summary['seed_std']:.2f}); hard labels only {100 * summary['hard_label_mean']:.2f}")
    verdict = ("the sweep supports the default" if summary["default_gap"] <= max(
        summary["seed_std"], 0.005) else
        f"the sweep favours T={b['temperature']:g}, alpha={b['alpha']} over the default")
    print(verdict)
    summary["verdict"] = verdict
    payload = {"mode": mode, "command": " ".join(["python", *sys.argv]), "settings": vars(args),
               "temperatures": TEMPERATURES, "alphas": ALPHAS, "tasks": results,
               "summary": summary, "seconds": round(time.perf_counter() - started, 1)}
    print(f"\nFor the README:\n{readme_tables(payload)}")
    if not args.no_json:
        name = "distill_sweep_quick" if quick else "distill_sweep"
        write_json(name, payload)
        plot(results, summary, RESULTS / f"{name}.png",
             f"distillation sweep ({mode}, mean of {args.seeds} seed(s))")


if __name__ == "__main__":
    main()
