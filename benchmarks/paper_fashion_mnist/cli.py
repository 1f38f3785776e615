"""The command line: options, resuming from the JSON, and the run over seeds."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .config import Config
from .data import FASHION_DIR, hold_out, load_digits_split, load_fashion_mnist
from .experiment import combine, run
from .report import format_summary, format_table, save_plot

DESCRIPTION = "Reproduce the MNIST table of Hinton, Vinyals & Dean (2015) on Fashion-MNIST."
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from e


def _ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from e
    if not values or len(set(values)) != len(values) or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected distinct seeds of 0 or more, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="sklearn's 8x8 digits instead of Fashion-MNIST; a minute or two",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=FASHION_DIR,
        help=f"folder of Fashion-MNIST IDX files (default {FASHION_DIR})",
    )
    parser.add_argument(
        "--teacher-members",
        type=int,
        default=None,
        help="an ensemble of N teachers differing by seed (default 4; 1 with --quick)",
    )
    parser.add_argument(
        "--max-shift",
        type=int,
        default=None,
        help="teacher input jitter in pixels; the paper's is 2 (default 0, see the docs)",
    )
    parser.add_argument("--teacher-dropout", type=float, default=0.3)
    parser.add_argument(
        "--teacher-input-dropout",
        type=float,
        default=None,
        help="dropout on the teacher's input pixels (default 0.1; 0 with --quick)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="set teacher and student epochs at once (smoke runs: 1)",
    )
    parser.add_argument(
        "--teacher-epochs",
        type=int,
        default=None,
        help="epochs of every teacher member (default 60; 100 with --quick)",
    )
    parser.add_argument(
        "--student-epochs",
        type=int,
        default=None,
        help="epochs of the full-data students (default 90, chosen on held-out images; 30 "
        "with --quick); the 3%% students get ten times as many over their subset",
    )
    parser.add_argument("--temperatures", type=_floats, default=[1.0, 2.0, 4.0, 8.0, 20.0])
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.5,
        help="weight of the soft-target term (hard labels get 1 - alpha)",
    )
    parser.add_argument(
        "--alpha-sweep",
        type=_floats,
        default=[0.9],
        help="other alphas to try at the best temperature ('' for none)",
    )
    parser.add_argument("--small-data-fraction", type=float, default=0.03)
    parser.add_argument(
        "--small-data-temperature",
        type=float,
        default=None,
        help="temperature for the little-data student (default: the best T)",
    )
    parser.add_argument(
        "--seeds",
        "--seed",
        dest="seeds",
        type=_ints,
        default=[0],
        help="one seed, or a comma list (0,1,2) for a table of means over the seeds; the JSON "
        "is rewritten after every seed, so a run cut short keeps the seeds it finished",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="take the seeds that the --output JSON already holds from it (their configuration "
        "must match) and train only the others: a run cut short goes on where it stopped",
    )
    parser.add_argument(
        "--validation",
        type=int,
        default=0,
        metavar="N",
        help="hold out N training images (a fixed class-balanced draw, the same for every seed) "
        "and report errors on them instead of on the test set: for choosing a recipe without "
        "looking at the test set. Writes distill_paper_val.json by default",
    )
    parser.add_argument(
        "--teacher-cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="save each seed's teacher logits in DIR, and take them from there when a teacher "
        "of the same settings was trained on the same data: student experiments then skip "
        "the teacher's ~40 min a seed on 2 cores",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="where to train: the GPU when torch sees one (auto), or the CPU",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON path (default benchmarks/results/distill_paper[_quick].json)",
    )
    args = parser.parse_args(argv)
    for name in ("teacher_members", "epochs", "teacher_epochs", "student_epochs", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not 0.0 <= args.alpha <= 1.0 or any(not 0.0 <= a <= 1.0 for a in args.alpha_sweep):
        parser.error(f"alphas must lie in [0, 1], got {args.alpha} and {args.alpha_sweep}")
    if args.max_shift is not None and args.max_shift < 0:
        parser.error(f"--max-shift must be 0 or more pixels, got {args.max_shift}")
    for name in ("teacher_dropout", "teacher_input_dropout"):
        if getattr(args, name) is not None and not 0.0 <= getattr(args, name) < 1.0:
            parser.error(
                f"--{name.replace('_', '-')} must lie in [0, 1), got {getattr(args, name)}"
            )
    if not args.temperatures or any(t <= 0 for t in args.temperatures):
        parser.error(f"--temperatures must be positive numbers, got {args.temperatures}")
    if args.validation < 0:
        parser.error(f"--validation must be 0 or more images, got {args.validation}")
    if not 0.0 < args.small_data_fraction <= 1.0:
        parser.error(f"--small-data-fraction must lie in (0, 1], got {args.small_data_fraction}")
    return args


#: Config fields that say where a run ran, not what it trained: a resumed run may differ in them.
_PLACE_FIELDS = ("seed", "threads", "device")
#: Config fields added after runs were saved, with the value those runs had.
_ADDED_FIELDS = {"evaluated_on": "test"}


def finished_runs(path: Path, config: Config) -> dict[int, dict]:
    """The runs, by seed, that the JSON at ``path`` holds for ``config`` (any seed).

    Raises SystemExit when the file holds runs of another configuration: resuming would mix
    two experiments in one table.
    """
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    wanted = json.loads(json.dumps(dataclasses.asdict(config)))
    done: dict[int, dict] = {}
    for run_ in saved.get("runs", [saved]):
        found = {**_ADDED_FIELDS, **run_["config"]}
        differ = sorted(
            key
            for key in set(wanted) | set(found)
            if key not in _PLACE_FIELDS and wanted.get(key) != found.get(key)
        )
        if differ:
            raise SystemExit(
                f"error: {path} holds a run with other settings ({', '.join(differ)}); "
                "resume with the same options, or write elsewhere with --output"
            )
        done[run_["config"]["seed"]] = run_
    return done


def _pick_device(choice: str) -> str:
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch sees no GPU; use --device cpu")
    return choice


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.manual_seed(args.seeds[0])
    np.random.seed(args.seeds[0])
    if args.quick:
        # One train/test split for every seed: the seeds vary the nets, not the data.
        train_set, test_set = load_digits_split(args.seeds[0])
        # No jitter on 8x8 digits: one pixel is 12% of the width, and in a trial run the
        # jittered teacher came out worse than the unregularised small net. The dropout teacher
        # also needs many more passes over 1,297 images than the small net does.
        dataset, max_shift, teacher_epochs, student_epochs = "digits (sklearn, 8x8)", 0, 100, 30
        members, input_dropout = 1, 0.0
    else:
        try:
            train_set, test_set = load_fashion_mnist(args.data_dir)
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        # The committed table: 4 members x 60 epochs, dropout 0.3 (0.1 on the pixels), no
        # jitter; a few minutes a seed on a GPU, about 1.5 hours on 2 CPU cores. With Hinton's
        # 2-pixel jitter (or 1 pixel) and dropout 0.5, 60 epochs left each member worse than
        # the unregularised small net: an MLP needs far more passes to learn shifted copies
        # (benchmarks/results/distill_paper_other_runs.log). Students: 90 epochs, chosen on
        # held-out training images (at 30 none had finished training; README, "training
        # length"); the 30-epoch table is distill_paper_e30.json.
        dataset, max_shift, teacher_epochs, student_epochs = "Fashion-MNIST", 0, 60, 90
        members, input_dropout = 4, 0.1
    if args.validation:
        train_set, test_set = hold_out(train_set, args.validation)
    max_shift = max_shift if args.max_shift is None else args.max_shift
    members = args.teacher_members or members
    teacher_epochs = args.teacher_epochs or args.epochs or teacher_epochs
    student_epochs = args.student_epochs or args.epochs or student_epochs
    config = Config(
        dataset=dataset,
        teacher_members=members,
        teacher_hidden=1200,
        teacher_dropout=args.teacher_dropout,
        teacher_input_dropout=(
            input_dropout if args.teacher_input_dropout is None else args.teacher_input_dropout
        ),
        teacher_epochs=teacher_epochs,
        student_hidden=800,
        student_epochs=student_epochs,
        temperatures=args.temperatures,
        alpha=args.alpha,
        alpha_sweep=args.alpha_sweep,
        max_shift=max_shift,
        small_data_fraction=args.small_data_fraction,
        # Ten times the passes over the tiny subset: about a third of the full student's updates.
        small_data_epochs=student_epochs * 10,
        small_data_temperature=args.small_data_temperature,
        batch_size=128,
        lr=1e-3,
        seed=args.seeds[0],
        threads=args.threads,
        device=_pick_device(args.device),
        evaluated_on="validation" if args.validation else "test",
    )
    print(
        f"{dataset}: {len(train_set.labels)} train, {len(test_set.labels)} "
        f"{config.evaluated_on}; "
        f"teacher {teacher_epochs} epochs, students {student_epochs} epochs",
        file=sys.stderr,
        flush=True,
    )
    suffix = ("_quick" if args.quick else "") + ("_val" if args.validation else "")
    json_path = args.output or RESULTS_DIR / f"distill_paper{suffix}.json"
    plot_path = json_path.with_suffix(".png")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    done = finished_runs(json_path, config) if args.resume else {}
    dropped = sorted(set(done) - set(args.seeds))
    if dropped:
        raise SystemExit(
            f"error: {json_path} also holds seeds {dropped}, which --seeds leaves out; add them "
            "to --seeds, or write elsewhere with --output"
        )
    by_seed = dict(done)

    def publish() -> dict:
        """The table of every seed finished so far (trained or taken), to JSON and plot."""
        result = combine([by_seed[seed] for seed in args.seeds if seed in by_seed])
        result["plot"] = str(
            plot_path.relative_to(Path.cwd()) if plot_path.is_relative_to(Path.cwd()) else plot_path
        )
        save_plot(result, plot_path)
        # Written whole to a side file, then renamed: a run killed mid-write keeps the last.
        partial = json_path.with_suffix(".json.tmp")
        partial.write_text(json.dumps(result, indent=2) + "\n")
        partial.replace(json_path)
        return result

    for seed in args.seeds:
        if seed in done:
            print(f"seed {seed}: taken from {json_path}", file=sys.stderr, flush=True)
            continue
        if len(args.seeds) > 1:
            print(f"seed {seed}", file=sys.stderr, flush=True)
        by_seed[seed] = run(
            dataclasses.replace(config, seed=seed), train_set, test_set, args.teacher_cache
        )
        publish()
    result = publish()
    print(format_table(result))
    print()
    print(format_summary(result))
    print(f"\nwrote {json_path} and {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
