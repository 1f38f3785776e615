"""What the three benchmarks share: encoder and metric lists, sampling, timing and notes.

Encoder names are those of :func:`simtools.make_encoder` (``student:DIR`` included; ``hybrid``
for search only). An encoder whose extra is missing (``minilm`` without ``simtools[teacher]``)
is skipped with a :class:`Skipped` record that names the extra, so one missing package never
fails a whole run. ``bm25`` scores by inner product only (any other metric would change its
ranking, and :class:`~simtools.index.Index` refuses it): its other combinations are skipped
the same way.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .._validation import check_int
from ..encoders import ENCODER_NAMES
from ..errors import InputError
from ..metrics import Metric

__all__ = ["PRETRAINED", "Progress", "Skipped", "check_encoders", "check_max_docs", "check_metrics",
           "check_seed", "combinations", "load_labelled_texts", "make_encoder_or_skip",
           "median_seconds", "pyplot", "sample_positions"]

#: Called as work advances: (steps done, steps in all).
Progress = Callable[[int, int], None]

#: Encoders that learn nothing from the texts: each text is encoded once and shared by folds.
PRETRAINED = frozenset({"minilm", "student"})
_HYBRID_DENSE = ("student", "minilm")


@dataclass(frozen=True)
class Skipped:
    """A combination (or a whole encoder or backend) left out of a run, and why."""

    what: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _kind(name: str) -> str:
    return name.partition(":")[0]


def check_encoders(names: str | Sequence[str], *, hybrid: bool = False) -> list[str]:
    """Encoder names, checked (a comma-separated string or a sequence); an unknown one is an
    InputError that lists the valid names. ``hybrid``: also accept ``hybrid[:student|:minilm]``."""
    given = names.split(",") if isinstance(names, str) else list(names)
    found = [str(n).strip() for n in given if str(n).strip()]
    if not found:
        raise InputError("encoders is empty; name at least one encoder, e.g. encoders='count'")
    valid = sorted(ENCODER_NAMES) + (["hybrid"] if hybrid else [])
    for name in found:
        kind, _, argument = name.partition(":")
        ok = kind in ENCODER_NAMES and (not argument or kind == "student")
        ok = ok or (hybrid and kind == "hybrid" and argument in ("", *_HYBRID_DENSE))
        if not ok:
            extra = "; student:DIR names a student model folder" + (
                ", hybrid:minilm a MiniLM hybrid" if hybrid else "")
            raise InputError(f"unknown encoder {name!r}; valid values are {', '.join(valid)}"
                             f"{extra}")
    return list(dict.fromkeys(found))


def check_metrics(names: str | Sequence[str | Metric] | None) -> list[Metric]:
    """Metrics, checked; None: all four. An unknown name's error lists the valid ones."""
    if names is None:
        return list(Metric)
    given = names.split(",") if isinstance(names, str) else list(names)
    found = [n if isinstance(n, Metric) else str(n).strip() for n in given]
    found = [n for n in found if n]
    if not found:
        raise InputError("metrics is empty; name at least one, e.g. metrics='cosine'")
    out = []
    for name in found:
        try:
            out.append(Metric(name))
        except ValueError:
            raise InputError(f"unknown metric {name!r}; valid values are "
                             f"{', '.join(Metric.choices())}") from None
    return list(dict.fromkeys(out))


def combinations(encoders: Sequence[str], metrics: Sequence[Metric]
                 ) -> tuple[list[tuple[str, Metric]], list[Skipped]]:
    """Every (encoder, metric) pair to run, and those skipped: bm25 takes inner product only
    (so it gets that one pair, whatever ``metrics`` are)."""
    pairs, skipped = [], []
    for encoder in encoders:
        bm25 = _kind(encoder) == "bm25"
        refused = [m.value for m in metrics if bm25 and m is not Metric.INNER_PRODUCT]
        pairs += [(encoder, m) for m in (metrics if not bm25 else [Metric.INNER_PRODUCT])]
        if refused:
            skipped.append(Skipped(f"{encoder} + {', '.join(refused)}", "bm25 scores by inner "
                                   "product only (its inner products are the BM25 scores), so "
                                   "it runs with inner_product alone"))
    return pairs, skipped


def make_encoder_or_skip(name: str) -> tuple[Any, Skipped | None]:
    """A new encoder, or ``(None, Skipped)`` when it needs a package that is not installed
    (the reason is the ImportError's message, which names the extra)."""
    from ..encoders import make_encoder

    try:
        return make_encoder(name), None
    except ImportError as e:
        return None, Skipped(name, str(e))


def check_seed(seed: Any) -> int:
    return check_int(seed, "seed", minimum=0)


def check_max_docs(max_docs: Any) -> int | None:
    return None if max_docs is None else check_int(max_docs, "max_docs", minimum=1)


def sample_positions(n: int, max_docs: int | None, seed: int,
                     keep: Sequence[int] = ()) -> np.ndarray | None:
    """Sorted positions of a seeded sample of ``max_docs`` of ``n`` items (all of ``keep`` among
    them), or None when ``n <= max_docs`` and nothing is sampled."""
    if max_docs is None or n <= max_docs:
        return None
    kept = np.unique(np.asarray(keep, dtype=np.int64))
    if len(kept) >= max_docs:
        return kept
    rest = np.setdiff1d(np.arange(n), kept)
    drawn = np.random.default_rng(seed).choice(rest, max_docs - len(kept), replace=False)
    return np.sort(np.concatenate([kept, drawn]))


def median_seconds(fn: Callable[[], Any], *, repeat: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``repeat`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load_labelled_texts(path: str, *, encoding: str | None = None
                        ) -> tuple[list[str], list[str]]:
    """Every labelled text of ``path`` (the forms :func:`simtools.data.load_labelled` reads,
    as ``simtools distill --data`` takes them): its train, validation and test splits pooled,
    in that order, for cross-validation."""
    from ..data import load_labelled

    data = load_labelled(path, encoding=encoding)
    parts = [p for p in (data.train, data.val, data.test) if p is not None]
    return [t for p in parts for t in p.texts], [y for p in parts for y in p.labels]


def pyplot() -> Any:
    """matplotlib's pyplot (the Agg backend: files only), or an ImportError naming the extra."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError('plotting needs matplotlib, which is not installed; run: pip install '
                          '"simtools[bench]"') from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
