"""Reproduce the MNIST table of Hinton, Vinyals & Dean (2015) on Fashion-MNIST.

Rows, all measured in one process and one run so they compare directly:

* teacher: big regularised nets (2x1200 ReLU, dropout; ``--max-shift 2`` adds the paper's
  jitter of up to 2 pixels), an ensemble of ``--teacher-members N`` differing only by seed;
* small: a 2x800 ReLU net with no regularisation, trained on the hard labels;
* distilled: the same small net, same initial weights and batch order, trained with the
  project's soft-target loss (``simtools.distill.losses.soft_target_loss``) at each temperature;
* the little-data finding: the small net trained on 3% of the training set, once with hard
  labels and once with the teacher's soft targets (the teacher itself saw all the data).

Nets that see the same images for the same epochs (the teacher's members; the students) are
trained side by side as one ``StackedMLP``, one batched matmul per layer: on a GPU a 2x1200 MLP
at batch 128 is bound by kernel launches, not arithmetic. Each keeps its own initial weights,
batch order and loss, so they are the nets trained one by one up to floating-point rounding
(``tests/test_bench_distill_paper.py`` checks it). The rounding is not quite the same in a
group of 2 and of 6 nets: over 90 epochs on 60,000 images that last-bit difference grows into
one as large as a change of seed (README, "What the three seeds show").

The share of the teacher/small gap that distillation recovers is
``(small - distilled) / (small - teacher)``; the paper's MNIST figure is
(146 - 74) / (146 - 67) = 91%.

The code, one job a module: ``data`` (Fashion-MNIST, the digits, splits), ``nets`` (the
MLPs, the training loop, the losses), ``teacher`` (the ensemble's logits, cached),
``experiment`` (one run, and the table of several seeds), ``report`` (table, summary, plot),
``cli`` (options, resuming, the run over seeds). ``benchmarks/distill_paper.py`` runs it.

Usage (from the repository root)::

    python benchmarks/distill_paper.py               # Fashion-MNIST: ~1.5 h a seed on 2 cores
    python benchmarks/distill_paper.py --seeds 0,1,2 # the table of means over three seeds
    python benchmarks/distill_paper.py --seeds 0,1,2 --resume  # train only the seeds the JSON lacks
    python benchmarks/distill_paper.py --quick       # sklearn's 8x8 digits, a few minutes
    python benchmarks/distill_paper.py --quick --epochs 1   # smoke run
    # Choosing a recipe without the test set: 10,000 training images held out, the teacher's
    # logits kept, so a second student recipe costs the students' time only.
    python benchmarks/distill_paper.py --validation 10000 --teacher-cache ~/.cache/simtools/distill_paper --student-epochs 30
    python benchmarks/distill_paper.py --validation 10000 --teacher-cache ~/.cache/simtools/distill_paper

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist``
(``apt-get install -y dataset-fashion-mnist``), read from ``/usr/share/datasets/fashion-mnist``.
Results go to ``benchmarks/results/distill_paper.json`` (``distill_paper_quick.json`` with
``--quick``) and a plot to ``distill_paper.png`` (``distill_paper_quick.png``).
"""

from __future__ import annotations

from .cli import RESULTS_DIR, finished_runs, main, parse_args
from .config import PAPER, Config
from .data import (
    APT_HINT,
    FASHION_DIR,
    VALIDATION_SEED,
    Split,
    hold_out,
    jitter,
    load_digits_split,
    load_fashion_mnist,
    stratified_subset,
)
from .experiment import combine, gap_recovered, run
from .nets import (
    LossFn,
    StackedMLP,
    TrainSpec,
    _dropout,
    count_errors,
    hard_label_loss,
    logits_of,
    make_mlp,
    soft_loss,
    train,
)
from .report import format_summary, format_table, save_plot
from .teacher import teacher_cache_path, teacher_logits

__all__ = [
    "PAPER",
    "Config",
    "APT_HINT",
    "FASHION_DIR",
    "VALIDATION_SEED",
    "Split",
    "hold_out",
    "jitter",
    "load_digits_split",
    "load_fashion_mnist",
    "stratified_subset",
    "LossFn",
    "StackedMLP",
    "TrainSpec",
    "_dropout",
    "count_errors",
    "hard_label_loss",
    "logits_of",
    "make_mlp",
    "soft_loss",
    "train",
    "teacher_cache_path",
    "teacher_logits",
    "combine",
    "gap_recovered",
    "run",
    "format_summary",
    "format_table",
    "save_plot",
    "RESULTS_DIR",
    "finished_runs",
    "main",
    "parse_args",
]
