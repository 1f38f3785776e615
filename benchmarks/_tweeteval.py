"""TweetEval helpers shared by the distillation benchmarks: tasks, official metrics, subsets.

The official metric of each task follows Barbieri et al. (2020), "TweetEval: Unified Benchmark
and Comparative Evaluation for Tweet Classification":

* emoji, emotion, hate, offensive: macro-averaged F1 over all classes;
* irony: F1 of the ironic class alone;
* stance: the mean of the F1 of "favor" and of "against" (the "none" class is not averaged),
  computed here over the five targets pooled into one set.

Scores are on the validation splits: the test splits are held out of this project. Figures
quoted from the paper are on the test splits and are marked as such wherever they appear.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._harness import RESULTS, SHARED
from simtools.evaluation import f1_per_class

TWEETEVAL = SHARED / "datasets" / "tweeteval"

#: Task order of the tables (the paper's order).
TASKS = ("emoji", "emotion", "hate", "irony", "offensive", "stance")

#: How each task is scored: ("macro", None) or ("classes", names whose F1 is averaged).
OFFICIAL: dict[str, tuple[str, tuple[str, ...]]] = {
    "emoji": ("macro", ()),
    "emotion": ("macro", ()),
    "hate": ("macro", ()),
    "irony": ("classes", ("irony",)),
    "offensive": ("macro", ()),
    "stance": ("classes", ("favor", "against")),
}

METRIC_NAMES = {
    "emoji": "macro-F1", "emotion": "macro-F1", "hate": "macro-F1",
    "irony": "F1 (ironic)", "offensive": "macro-F1", "stance": "mean F1 (favor, against)",
}

#: TweetEval paper, table 2: TEST-split scores (x100). Not comparable one-to-one with our
#: validation scores; shown for orientation.
PAPER_TEST = {
    "fastText (paper, TEST)": {"emoji": 25.8, "emotion": 65.2, "hate": 50.6, "irony": 63.1,
                               "offensive": 73.4, "stance": 65.4},
    "RoBERTa-base (paper, TEST)": {"emoji": 30.9, "emotion": 76.1, "hate": 46.6, "irony": 59.7,
                                   "offensive": 79.5, "stance": 68.0},
}
for _row in PAPER_TEST.values():
    _row["average"] = round(sum(_row[t] for t in TASKS) / len(TASKS), 2)


def official_score(task: str, labels: Sequence[str], y_true: Sequence[int] | np.ndarray,
                   y_pred: Sequence[int] | np.ndarray) -> Any:
    """The task's official metric (0..1) for class indices into ``labels``: a float, or one
    score per row for ``(B, n)`` label arrays."""
    kind, names = OFFICIAL[task]
    f1 = f1_per_class(np.asarray(y_true), np.asarray(y_pred), len(labels))
    if kind == "macro":
        score = f1.mean(axis=-1)
    else:
        missing = [n for n in names if n not in labels]
        if missing:
            raise ValueError(f"task {task}: labels {list(labels)} lack {missing}")
        score = f1[..., [list(labels).index(n) for n in names]].mean(axis=-1)
    return float(score) if score.ndim == 0 else score


def paired_bootstrap(task: str, labels: Sequence[str], y_true: np.ndarray,
                     preds_a: Sequence[np.ndarray], preds_b: Sequence[np.ndarray], *,
                     n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """How sure is "b scores higher than a" on this validation set? A paired bootstrap.

    ``preds_a`` and ``preds_b`` hold one prediction array per training seed. Each resample
    draws the validation tweets with replacement and scores every prediction array on the same
    draw; the statistic is mean-over-seeds(b) - mean-over-seeds(a), x100. So the interval
    covers both the seeds' spread and which tweets happen to be in the validation split (the
    part more seeds cannot shrink). Returns the observed difference, the 95% percentile
    interval, and the share of resamples in which b is ahead.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    draws = np.random.default_rng(seed).integers(0, len(y_true), (n_resamples, len(y_true)))

    def mean_score(preds: Sequence[np.ndarray], rows: np.ndarray | None) -> Any:
        pick = (lambda a: a) if rows is None else (lambda a: np.asarray(a)[rows])
        return np.mean([official_score(task, labels, pick(y_true), pick(p)) for p in preds],
                       axis=0)

    observed = 100 * (mean_score(preds_b, None) - mean_score(preds_a, None))
    diffs = 100 * (mean_score(preds_b, draws) - mean_score(preds_a, draws))
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"difference": round(float(observed), 2), "ci95": [round(float(low), 2),
                                                              round(float(high), 2)],
            "share_b_ahead": round(float((diffs > 0).mean()), 3),
            "n_resamples": n_resamples, "seed": seed}


@dataclass
class Task:
    """One TweetEval task, possibly subsampled: texts and class indices per split."""

    name: str
    labels: list[str]
    train_texts: list[str]
    train_y: np.ndarray
    val_texts: list[str]
    val_y: np.ndarray
    full_sizes: dict[str, int]

    def score(self, y_pred: Sequence[int] | np.ndarray) -> float:
        return official_score(self.name, self.labels, self.val_y, y_pred)

    def labelled_data(self) -> Any:
        """The (subsampled) task as a :class:`simtools.data.LabelledData` for the trainer."""
        from simtools.data import LabelledData, Split

        return LabelledData(
            train=Split(list(self.train_texts), [self.labels[i] for i in self.train_y]),
            val=Split(list(self.val_texts), [self.labels[i] for i in self.val_y]),
            labels=list(self.labels), source=f"tweeteval/{self.name}")


def subsample_positions(n: int, cap: int | None, seed: int) -> np.ndarray:
    """Sorted positions of a seeded random subset of ``cap`` of ``n`` items (all if no cap).

    Subsets for smaller caps are prefixes of one permutation, so a quick run's texts are a
    subset of a full run's (and hit the teacher cache the full run filled).
    """
    if cap is None or cap >= n:
        return np.arange(n)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[:cap])


def load_task(name: str, *, max_train: int | None = None, max_val: int | None = None,
              seed: int = 0, root: Path = TWEETEVAL) -> Task:
    """Load one task with ``simtools.data.load_labelled`` (stance: the 5 targets pooled)."""
    from simtools.data import load_labelled

    folder = root / name
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing: the benchmarks read TweetEval from "
                         f"../shared/datasets/tweeteval (set SIMTOOLS_SHARED to move it)")
    try:
        data = load_labelled(folder)
    except ValueError as e:
        if "is empty" not in str(e):
            raise
        # hate has 8 empty tweets (train lines 1468, 1983, ...; val line 265) that
        # load_labelled refuses; they carry nothing to learn or score, so they are dropped.
        data = _load_dropping_empty(folder)
    labels = list(data.labels)
    index = {lab: i for i, lab in enumerate(labels)}
    tr = subsample_positions(len(data.train), max_train, seed)
    va = subsample_positions(len(data.val), max_val, seed + 1)
    return Task(
        name=name, labels=labels,
        train_texts=[data.train.texts[i] for i in tr],
        train_y=np.array([index[data.train.labels[i]] for i in tr], dtype=np.int64),
        val_texts=[data.val.texts[i] for i in va],
        val_y=np.array([index[data.val.labels[i]] for i in va], dtype=np.int64),
        full_sizes={"train": len(data.train), "val": len(data.val)})


def _load_dropping_empty(folder: Path) -> Any:
    """``load_labelled`` on a copy of a TweetEval folder without its empty texts."""
    import tempfile

    from simtools.data import load_labelled

    with tempfile.TemporaryDirectory() as tmp:
        for part in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
            target = Path(tmp) / part.relative_to(folder)
            target.mkdir(parents=True, exist_ok=True)
            for mapping in part.glob("mapping.txt"):
                (target / mapping.name).write_bytes(mapping.read_bytes())
            for text_file in part.glob("*_text.txt"):
                label_file = part / text_file.name.replace("_text", "_labels")
                texts = text_file.read_text(encoding="utf-8").split("\n")
                labels = label_file.read_text(encoding="utf-8").split("\n")
                keep = [i for i, t in enumerate(texts) if t.strip() and i < len(labels)]
                (target / text_file.name).write_text(
                    "\n".join(texts[i] for i in keep) + "\n", encoding="utf-8")
                (target / label_file.name).write_text(
                    "\n".join(labels[i] for i in keep) + "\n", encoding="utf-8")
        return load_labelled(tmp)


def directory_size_mb(path: Path) -> float:
    """Bytes of every file under ``path`` (or of the file itself), in MB (10^6)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def save_figure(fig: Any, path: Path) -> None:
    """Lay out, write and close a matplotlib figure, and say where it went."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path.relative_to(RESULTS.parent.parent)}")


def size_defaults(args: Any) -> None:
    """Fill the shared size options in place: 1,000 training / validation tweets per task
    (quick: 600 / 300, and 5 epochs when none was given)."""
    args.max_train = args.max_train or (600 if args.quick else 1000)
    args.max_val = args.max_val or (300 if args.quick else 1000)
    if args.quick and not getattr(args, "epochs", 1):
        args.epochs = 5


def add_pool_options(p: Any) -> None:
    """The unlabelled transfer-set options of the TweetEval distillation benchmarks."""
    p.add_argument("--unlabelled", choices=["other-tasks", "none"], default="other-tasks",
                   help="unlabelled tweets for the transfer set of every distilled student: the "
                        "other tasks' training texts (default), or none")
    p.add_argument("--max-unlabelled", type=int, default=None,
                   help="cap on those tweets per task (seeded subset; default 20000, quick 2000)")


def pool_defaults(args: Any) -> None:
    """Fill ``--max-unlabelled`` in place: 20,000 tweets per task (quick: 2,000)."""
    if args.max_unlabelled is None:
        args.max_unlabelled = 2_000 if args.quick else 20_000


def unlabelled_pool(task: Task, args: Any) -> list[str]:
    """Tweets for the transfer set: the training texts of the other TweetEval tasks, without
    their labels, minus any text of this task's training or validation split; a seeded random
    ``--max-unlabelled`` of them. (The test splits stay untouched.) The same texts as
    ``simtools distill --unlabelled ../shared/datasets/tweeteval --max-unlabelled N`` gives
    (``simtools.data.load_unlabelled``)."""
    from simtools.data import load_unlabelled

    if args.unlabelled == "none" or args.max_unlabelled == 0:
        return []
    others = [TWEETEVAL / name for name in TASKS if name != task.name]
    return load_unlabelled(others, exclude=task.labelled_data(), limit=args.max_unlabelled,
                           seed=args.seed)
