"""One training step of ``distill_paper.py``'s nets on the CPU: what its two speed-ups buy.

Times the real training loop (``distill_paper.train``, one epoch over random 28x28 images) for
the two groups a Fashion-MNIST seed trains side by side: the teacher's 4 x 2x1200 nets with
dropout 0.3 (0.1 on the pixels), and the 6 x 2x800 students. Four variants run interleaved in
one process, so the ratios hold on a loaded machine:

* dropout masks from ``bernoulli_`` (``nn.functional.dropout``) or from ``torch.rand``
  (``distill_paper._dropout``, what it uses now);
* torch's default Adam or the fused one (what it uses now).

The students have no dropout, so only the optimiser changes for them.

    python benchmarks/bench_train_step.py [--quick] [--repeat 3] [--threads 2]
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import distill_paper as dp  # noqa: E402


@contextlib.contextmanager
def bernoulli_masks() -> Iterator[None]:
    """Within the block, StackedMLP draws its dropout masks the way it did before."""
    drawn_by_rand = dp._dropout
    dp._dropout = lambda x, p: nn.functional.dropout(x, p)
    try:
        yield
    finally:
        dp._dropout = drawn_by_rand


def make_group(k: int, hidden: int, dropout: float, input_dropout: float) -> dp.StackedMLP:
    torch.manual_seed(0)
    return dp.StackedMLP(
        [dp.make_mlp(784, hidden, dropout=dropout, input_dropout=input_dropout) for _ in range(k)]
    )


def main() -> None:
    parser = h.parser(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = 10 if args.quick else 40
    batch = 128
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(steps * batch, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (steps * batch,), generator=generator)
    groups = {
        "teacher 4 x 2x1200": (4, 1200, 0.3, 0.1),
        "students 6 x 2x800": (6, 800, 0.0, 0.0),
    }
    variants = {
        "bernoulli_ masks, default Adam": (True, False),
        "bernoulli_ masks, fused Adam": (True, True),
        "torch.rand masks, default Adam": (False, False),
        "torch.rand masks, fused Adam (now)": (False, True),
    }
    rows = []
    for group, shape in groups.items():
        k = shape[0]

        def epoch(bernoulli: bool, fused: bool, shape=shape, k=k) -> None:
            model = make_group(*shape)
            spec = dp.TrainSpec(epochs=1, batch_size=batch, fused_adam=fused)
            with bernoulli_masks() if bernoulli else contextlib.nullcontext():
                dp.train(model, images, labels, spec, loss_fns=[dp.hard_label_loss] * k,
                         seeds=list(range(k)))

        if shape[2] == 0:  # no dropout: the masks cannot matter
            chosen = {name: v for name, v in variants.items() if not v[0]}
        else:
            chosen = variants
        times = h.time_interleaved(
            {name: (lambda v=v: epoch(*v)) for name, v in chosen.items()}, repeat=args.repeat
        )
        before = times[next(iter(chosen))]["median_s"]
        for name, t in times.items():
            rows.append({
                "group": group,
                "variant": name,
                "ms_per_step": 1000 * t["median_s"] / steps,
                "speedup": before / t["median_s"],
                "s_per_fashion_epoch": t["median_s"] / steps * 469,  # 60,000 / 128 steps
            })
    h.print_table(rows, ["group", "variant", "ms_per_step", "speedup", "s_per_fashion_epoch"],
                  title=f"one training step, batch {batch}, {args.threads} thread(s), "
                        f"median of {args.repeat} epochs of {steps} steps (speedup: over the "
                        "group's first row)")
    if not args.no_json:
        h.write_json("train_step" + ("_quick" if args.quick else ""),
                     {"steps": steps, "batch": batch, "threads": args.threads,
                      "repeat": args.repeat, "rows": rows})


if __name__ == "__main__":
    main()
