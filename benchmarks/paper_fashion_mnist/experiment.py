"""One run of the experiment (every row, one seed) and the table of several seeds."""

from __future__ import annotations

import dataclasses
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .config import PAPER, Config
from .data import Split, stratified_subset
from .nets import (
    LossFn,
    StackedMLP,
    TrainSpec,
    count_errors,
    hard_label_loss,
    logits_of,
    make_mlp,
    soft_loss,
    train,
)
from .teacher import teacher_logits


def _row(name: str, kind: str, errors: int, n_test: int, wall_s: float, **extra) -> dict:
    row = {"name": name, "kind": kind, "test_errors": errors, "n_test": n_test}
    row["test_error_pct"] = round(100.0 * errors / n_test, 2)
    row["wall_s"] = round(wall_s, 1)
    row.update(extra)
    print(
        f"  {name:<34} {errors:>6} errors  {row['test_error_pct']:6.2f}%  {wall_s:7.1f} s",
        file=sys.stderr,
        flush=True,
    )
    return row


def gap_recovered(small: int, teacher: int, distilled: int) -> float | None:
    """(small - distilled) / (small - teacher); None when the teacher is no better than small."""
    if small <= teacher:
        return None
    return (small - distilled) / (small - teacher)


#: The Config fields that decide the teacher's logits; the rest only shape the students.

def run(config: Config, train_set: Split, test_set: Split, cache_dir: Path | None = None) -> dict:
    """Train every row of the table for one seed and return the results as a JSON-ready dict.

    Nets that train on the same images for the same epochs are trained side by side in one
    :class:`StackedMLP` (the teacher's members; the students): each keeps its own initial
    weights, batch order and loss, so they are the nets trained one by one up to rounding,
    and the wall time of a group is shared evenly among its rows. With `cache_dir`, the teacher's
    logits are taken from there when a teacher of this configuration was saved on this data
    (:func:`teacher_logits`), and saved there when it is trained.
    """
    torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    train_set = Split(train_set.images.to(device), train_set.labels.to(device))
    test_set = Split(test_set.images.to(device), test_set.labels.to(device))
    n_inputs = train_set.images[0].numel()
    n_test = len(test_set.labels)
    spec: dict[str, Any] = dict(batch_size=config.batch_size, lr=config.lr)
    x, y = train_set.images, train_set.labels
    rows: list[dict] = []
    started = time.perf_counter()

    member_logits_train, member_logits_test, teacher_s, teacher_from = teacher_logits(
        config, x, y, test_set.images, cache_dir
    )
    members = config.teacher_members
    if members > 1:
        for member in range(members):
            errors = count_errors(member_logits_test[member], test_set.labels)
            rows.append(
                _row(
                    f"teacher member {member + 1}",
                    "teacher_member",
                    errors,
                    n_test,
                    teacher_s / members,
                )
            )
    # An ensemble's logits are averaged: the softmax of the mean logits is the (normalised)
    # geometric mean of the members' distributions, at every temperature.
    teacher_train = member_logits_train.mean(dim=0)
    teacher_test = member_logits_test.mean(dim=0)
    del member_logits_train, member_logits_test
    teacher_errors = count_errors(teacher_test, test_set.labels)
    regularisers = "dropout, jitter" if config.max_shift else "dropout"
    teacher_name = f"teacher (2x{config.teacher_hidden}, {regularisers})"
    if members > 1:
        teacher_name = f"teacher ensemble of {members} x 2x{config.teacher_hidden}"
    rows.append(
        _row(
            teacher_name,
            "teacher",
            teacher_errors,
            n_test,
            teacher_s,
            train_errors=count_errors(teacher_train, y),
        )
    )

    def students(plan: list[tuple], images, labels, epochs) -> list[dict]:
        """Train one small net per (name, kind, loss_fn, targets, extra) of `plan`."""
        t0 = time.perf_counter()
        nets = []
        for _ in plan:
            # Same initial weights and batch order for every student: rows differ by loss only.
            torch.manual_seed(config.seed + 300)
            nets.append(make_mlp(n_inputs, config.student_hidden))
        net = train(
            StackedMLP(nets).to(device),
            images,
            labels,
            TrainSpec(epochs, **spec),
            loss_fns=[p[2] for p in plan],
            targets=[p[3] for p in plan],
            seeds=[config.seed + 400] * len(plan),
        )
        test_logits, train_logits = logits_of(net, test_set.images), logits_of(net, images)
        wall_s = (time.perf_counter() - t0) / len(plan)
        return [
            _row(
                name,
                kind,
                count_errors(test_logits[i], test_set.labels),
                n_test,
                wall_s,
                train_errors=count_errors(train_logits[i], labels),
                n_train=len(labels),
                **extra,
            )
            for i, (name, kind, _, _, extra) in enumerate(plan)
        ]

    def distilled_row(row: dict, small: dict) -> dict:
        row["gap_recovered"] = gap_recovered(
            small["test_errors"], teacher_errors, row["test_errors"]
        )
        return row

    plan: list[tuple[str, str, LossFn, torch.Tensor | None, dict]] = [
        (f"small (2x{config.student_hidden}, hard labels)", "small", hard_label_loss, None, {})
    ]
    plan += [
        (
            f"distilled T={t:g} alpha={config.alpha:g}",
            "distilled",
            soft_loss(t, config.alpha),
            teacher_train,
            {"temperature": t, "alpha": config.alpha},
        )
        for t in config.temperatures
    ]
    small, *distilled = students(plan, x, y, config.student_epochs)
    distilled = [distilled_row(row, small) for row in distilled]
    rows += [small, *distilled]
    # Ties go to the higher temperature, the paper's choice (T = 20).
    best = min(distilled, key=lambda r: (r["test_errors"], -r["temperature"]))

    # Little data: the same small net on a fixed class-balanced subset, hard vs soft targets.
    subset = stratified_subset(y.cpu(), config.small_data_fraction, config.seed + 500).to(device)
    small_temperature = config.small_data_temperature or best["temperature"]
    pct = f"{100 * config.small_data_fraction:g}%"
    little_hard, little_soft = students(
        [
            (f"small, {pct} data, hard labels", "little_data_hard", hard_label_loss, None, {}),
            (
                f"small, {pct} data, soft T={small_temperature:g}",
                "little_data_soft",
                soft_loss(small_temperature, config.alpha),
                teacher_train[subset],
                {"temperature": small_temperature, "alpha": config.alpha},
            ),
        ],
        x[subset],
        y[subset],
        config.small_data_epochs,
    )
    rows += [little_hard, little_soft]

    # Last, so the table's main rows are in the log first if a long run is cut short.
    sweep = [a for a in config.alpha_sweep if a != config.alpha]
    if sweep:
        plan = [
            (
                f"distilled T={best['temperature']:g} alpha={a:g}",
                "alpha_sweep",
                soft_loss(best["temperature"], a),
                teacher_train,
                {"temperature": best["temperature"], "alpha": a},
            )
            for a in sweep
        ]
        rows += [distilled_row(row, small) for row in students(plan, x, y, config.student_epochs)]

    return {
        "benchmark": "distill_paper",
        "config": dataclasses.asdict(config),
        "n_train": len(y),
        "n_test": n_test,
        "rows": rows,
        "summary": {
            "teacher_errors": teacher_errors,
            "small_errors": small["test_errors"],
            "best_temperature": best["temperature"],
            "best_distilled_errors": best["test_errors"],
            "best_gap_recovered": best["gap_recovered"],
            "best_temperature_chosen_on": (
                "test set, as the paper's table does"
                if config.evaluated_on == "test"
                else f"{config.evaluated_on} set"
            ),
            "little_data_hard_errors": little_hard["test_errors"],
            "little_data_soft_errors": little_soft["test_errors"],
        },
        "paper": PAPER,
        "wall_s_total": round(time.perf_counter() - started, 1),
        # Set when the teacher was not trained in this run: wall_s_total then leaves it out, and
        # the teacher rows carry the seconds it took when it was trained.
        "teacher_logits_from": teacher_from,
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "threads": config.threads,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        },
    }


#: Rows trained at each seed's own best temperature: one row across seeds, whatever T that was.
_AT_BEST_T = ("little_data_soft", "alpha_sweep")


def _seed_key(row: dict) -> str:
    if row["kind"] in _AT_BEST_T:
        return f"{row['kind']} alpha={row.get('alpha')}"
    return row["name"]


def combine(results: list[dict]) -> dict:
    """One table from the runs of several seeds: each row's mean over the seeds that have it.

    A single run comes back as it is. Otherwise the rows hold mean test errors (and the count
    of every seed), the gap is recomputed from the means, and the best temperature is the one
    with the fewest mean errors: one temperature for all seeds, not the luckiest per seed.
    The 3% soft-target and alpha-sweep rows ran at each seed's own best temperature; each is
    one row here, named with every seed's T (``temperature`` None when they differ).
    """
    if len(results) == 1:
        return results[0]
    seeds = [r["config"]["seed"] for r in results]
    grouped: dict[str, list[dict]] = {}
    for result in results:
        for row in result["rows"]:
            grouped.setdefault(_seed_key(row), []).append(row)
    n_test = results[0]["n_test"]
    rows = []
    for found in grouped.values():
        errors = [r["test_errors"] for r in found]
        row = {k: v for k, v in found[0].items() if k not in ("train_errors", "gap_recovered")}
        row["test_errors"] = round(sum(errors) / len(errors), 1)
        row["test_errors_per_seed"] = errors
        row["n_seeds"] = len(found)
        row["test_error_pct"] = round(100.0 * row["test_errors"] / n_test, 2)
        row["wall_s"] = round(sum(r["wall_s"] for r in found) / len(found), 1)
        temps = [r["temperature"] for r in found] if row["kind"] in _AT_BEST_T else []
        if len(set(temps)) > 1:
            row["temperature"], row["temperature_per_seed"] = None, temps
            each = " / ".join(f"{t:g}" for t in temps)
            row["name"] = re.sub(r"T=[0-9.]+", f"T={each}", row["name"], count=1)
        rows.append(row)
    by_kind = {r["kind"]: r for r in rows if r["kind"] in ("teacher", "small")}
    teacher, small = by_kind["teacher"]["test_errors"], by_kind["small"]["test_errors"]
    for row in rows:
        if row["kind"] in ("distilled", "alpha_sweep"):
            row["gap_recovered"] = gap_recovered(small, teacher, row["test_errors"])
    full = [r for r in rows if r["kind"] == "distilled" and r["n_seeds"] == len(results)]
    best = min(full, key=lambda r: (r["test_errors"], -r["temperature"]))
    per_seed_gap = [
        gap_recovered(s["small_errors"], s["teacher_errors"], e)
        for s, e in zip((r["summary"] for r in results), best["test_errors_per_seed"])
    ]

    def mean_of(key: str) -> float:
        return round(sum(r["summary"][key] for r in results) / len(results), 1)

    on_test = results[0]["config"].get("evaluated_on", "test") == "test"

    return {
        "benchmark": "distill_paper",
        "config": {**results[0]["config"], "seed": None, "seeds": seeds},
        "seeds": seeds,
        "n_train": results[0]["n_train"],
        "n_test": n_test,
        "rows": rows,
        "summary": {
            "teacher_errors": teacher,
            "small_errors": small,
            "best_temperature": best["temperature"],
            "best_distilled_errors": best["test_errors"],
            "best_gap_recovered": best["gap_recovered"],
            "best_gap_recovered_per_seed": per_seed_gap,
            "best_temperature_chosen_on": (
                f"{results[0]['config'].get('evaluated_on', 'test')} set (mean over the seeds)"
                + (", as the paper's table does" if on_test else "")
            ),
            "little_data_hard_errors": mean_of("little_data_hard_errors"),
            "little_data_soft_errors": mean_of("little_data_soft_errors"),
        },
        "paper": PAPER,
        "wall_s_total": round(sum(r["wall_s_total"] for r in results), 1),
        # Resumed seeds may have run elsewhere (one on a GPU, the next on CPU cores).
        "environment": (
            results[0]["environment"]
            if all(r["environment"] == results[0]["environment"] for r in results)
            else {"per_seed": {str(r["config"]["seed"]): r["environment"] for r in results}}
        ),
        "runs": results,
    }
