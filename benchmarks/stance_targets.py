"""TweetEval stance: one student for all five targets, or one student per target?

Both are trained by the library's own functions with the default recipe
(``DistillConfig()``, default teacher): ``sweep`` on the pooled data, and ``sweep_by_group``
(one student per target, scored pooled, each tweet by its target's student). The score is the
task's official one, the mean F1 of "favor" and "against", on the VALIDATION split; the test
split is held out. One row per seed, then the mean.

Usage (from the repository root)::

    python benchmarks/stance_targets.py            # seeds 0, 1, 2 (about 3 minutes)
    python benchmarks/stance_targets.py --quick    # seed 0, 2 epochs

Writes ``benchmarks/results/stance_targets.json``; ``docs/distillation.md`` quotes its table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import markdown_table, parser, write_json  # noqa: E402

STANCE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "tweeteval" / "stance"
OFFICIAL = ["favor", "against"]


def _score(model: Any, data: Any, groups: Any = None) -> float:
    from simtools.evaluation import evaluate_classifier

    scores = evaluate_classifier(model, data.val.texts, data.val.labels, groups=groups,
                                 f1_of=OFFICIAL)
    return round(100 * scores["f1_of"]["mean_f1"], 2)


def run(seeds: list[int], epochs: int | None) -> dict[str, Any]:
    from dataclasses import replace

    from simtools.data import load_labelled
    from simtools.distill.config import DistillConfig
    from simtools.distill.groups import sweep_by_group
    from simtools.distill.trainer import sweep

    data = load_labelled(STANCE)
    rows = []
    for seed in seeds:
        config = DistillConfig(seed=seed)
        if epochs:
            config = replace(config, epochs=epochs)
        started = time.perf_counter()
        pooled = _score(sweep(data, config)[0].student, data)
        per_target = _score(sweep_by_group(data, config)[0].student, data, data.val.groups)
        rows.append({"seed": seed, "pooled": pooled, "per_target": per_target,
                     "seconds": round(time.perf_counter() - started, 1)})
        print(rows[-1], flush=True)
    mean = {k: round(sum(r[k] for r in rows) / len(rows), 2) for k in ("pooled", "per_target")}
    return {"split": "val", "n_val": len(data.val), "targets": data.groups, "rows": rows,
            "mean": mean, "config": DistillConfig().to_dict()}


def table(result: dict[str, Any]) -> str:
    rows = [[r["seed"], f"{r['pooled']:.2f}", f"{r['per_target']:.2f}"] for r in result["rows"]]
    rows.append(["mean", f"{result['mean']['pooled']:.2f}", f"{result['mean']['per_target']:.2f}"])
    return markdown_table(["seed", "one student for all targets", "one student per target"], rows)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    if not STANCE.is_dir():
        sys.exit(f"{STANCE} is missing: the stance task of ../shared/datasets/tweeteval")
    result = run([0] if args.quick else [0, 1, 2], 2 if args.quick else None)
    print(table(result))
    if not args.no_json and not args.quick:
        write_json("stance_targets", result)


if __name__ == "__main__":
    main()
