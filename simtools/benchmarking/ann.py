"""Exact search against the approximate (FAISS) backends on your own vectors: recall@k vs q/s.

Queries are held apart from the data itself: a seeded sample of the vectors is taken out of
the database and searched for. Their true neighbours come from the exact backend an
:class:`~simtools.index.Index` would use (BLAS; FAISS flat on a GPU machine), timed too; each
ANN backend is built once and searched at every setting of its knob (HNSW's ``ef_search``,
IVF's ``nprobe``), and its recall is :func:`simtools.evaluation.neighbour_recall` of what it
found. The answer is the fastest setting whose recall reaches the target.

Cosine and normalised Euclidean are served as inner product over unit vectors (the vectors are
normalised first), Euclidean as squared L2, inner product as it is: what the index does. The
ANN backends need FAISS (``simtools[ann]``); without it they are skipped with a note, and
exact search is the only row.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .._validation import check_int, check_k, check_vectors, is_sparse
from ..errors import InputError
from ..evaluation import neighbour_recall
from ..index.backend import BackendKind, InnerMetric
from ..metrics import Metric, l2_normalize, row_norms
from .common import Progress, Skipped, check_max_docs, check_seed, median_seconds, sample_positions

__all__ = ["DEFAULT_SWEEPS", "AnnReport", "AnnRow", "Sweep", "benchmark_ann", "check_recall",
           "exact_neighbours", "fastest", "index_vectors", "sweep"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sweep:
    """One ANN backend (``kind`` and build ``options``) searched at each of ``values`` of its
    ``knob``; ``name`` labels its rows."""

    name: str
    kind: str
    knob: str
    values: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


#: What ``simtools benchmark index`` sweeps: HNSW and IVF (flat codes), default build settings.
DEFAULT_SWEEPS = (Sweep("hnsw", "hnsw", "ef_search", (8, 16, 32, 64, 128, 256)),
                  Sweep("ivf", "ivf", "nprobe", (1, 2, 4, 8, 16, 32, 64)))


@dataclass
class AnnRow:
    """One backend at one setting (``method`` "exact" for the reference)."""

    method: str
    knob: str
    value: int | None
    recall: float
    qps: float
    speedup: float  # q/s over exact search's
    build_s: float
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AnnReport:
    """The sweep, its data, and the fastest setting that reaches the recall target."""

    database: int
    queries: int
    dim: int
    metric: str
    k: int
    recall_target: float
    rows: list[AnnRow]
    skipped: list[Skipped] = field(default_factory=list)
    sampled_from: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exact_qps(self) -> float:
        return self.rows[0].qps

    @property
    def fastest(self) -> AnnRow:
        """The fastest row that reaches the target (exact search when no ANN setting does)."""
        return fastest(self.rows, self.recall_target) or self.rows[0]

    def to_dict(self) -> dict[str, Any]:
        per_method = {m: r.to_dict() for m in dict.fromkeys(r.method for r in self.rows)
                      if (r := fastest([x for x in self.rows if x.method == m],
                                       self.recall_target)) is not None}
        return {"database": self.database, "queries": self.queries, "dim": self.dim,
                "metric": self.metric, "k": self.k, "recall_target": self.recall_target,
                "exact_qps": self.exact_qps, "rows": [r.to_dict() for r in self.rows],
                "fastest": self.fastest.to_dict(), "fastest_per_method": per_method,
                "sampled_from": self.sampled_from,
                "skipped": [s.to_dict() for s in self.skipped], "notes": self.notes}


def check_recall(recall: Any) -> float:
    """A recall target in (0, 1]."""
    if isinstance(recall, bool) or not isinstance(recall, (int, float, np.floating)):
        raise TypeError(f"recall must be a number, got {type(recall).__name__}")
    if not (0 < float(recall) <= 1):
        raise InputError(f"recall={recall} is out of range; give a target in (0, 1], e.g. "
                         "recall=0.95")
    return float(recall)


def fastest(rows: Sequence[AnnRow], recall: float) -> AnnRow | None:
    """The row with the most q/s among those with at least ``recall``; None if there is none."""
    reaching = [r for r in rows if r.recall >= recall - 1e-12]
    return max(reaching, key=lambda r: r.qps) if reaching else None


def _inner(metric: Metric) -> InnerMetric:
    return InnerMetric.L2 if metric is Metric.EUCLIDEAN else InnerMetric.IP


def exact_neighbours(X: np.ndarray, Q: np.ndarray, k: int, inner: InnerMetric | str, *,
                     repeat: int = 3) -> tuple[np.ndarray, float]:
    """The true top-``k`` positions of every query (int64 ``(nq, k)``) and exact search's
    q/s, from the exact backend an Index would use."""
    from ..index.backends import make_backend

    backend = make_backend(BackendKind.EXACT, X.shape[1], InnerMetric(inner), False, {})
    backend.add(X)
    truth = backend.search(Q, k)[1]
    seconds = median_seconds(lambda: backend.search(Q, k), repeat=repeat)
    release = getattr(backend, "release_buffer", None)
    if release is not None:
        release()
    return truth, len(Q) / max(seconds, 1e-12)


def sweep(X: np.ndarray, Q: np.ndarray, truth: np.ndarray, sweeps: Sequence[Sweep], *, k: int,
          inner: InnerMetric | str, exact_qps: float, repeat: int = 3,
          progress: Progress | None = None, skipped: list[Skipped] | None = None
          ) -> list[AnnRow]:
    """Every sweep's rows: recall@``k`` against ``truth`` and q/s at each knob value. A backend
    that cannot be built (FAISS missing, too few vectors to train) goes to ``skipped``."""
    from ..index.faiss import make_backend

    rows: list[AnnRow] = []
    total, done = sum(len(s.values) for s in sweeps), 0
    for spec in sweeps:
        start = time.perf_counter()
        try:
            backend = make_backend(spec.kind, X.shape[1], InnerMetric(inner).value, **spec.options)
            backend.add(X)
            if hasattr(backend, "train"):
                backend.train()
        except (ImportError, ValueError) as e:
            (skipped if skipped is not None else []).append(Skipped(spec.name, str(e)))
            done += len(spec.values)
            if progress is not None:
                progress(done, total)
            continue
        build_s = time.perf_counter() - start
        nlist = getattr(backend, "nlist", None)
        options = {**spec.options, **({"nlist": nlist} if nlist else {})}
        values: Sequence[int] = spec.values
        if spec.knob == "nprobe" and nlist:
            # Past nlist every cell is visited: the same search again.
            values = list(dict.fromkeys(min(v, nlist) for v in values))
        for value in values:
            setattr(backend, spec.knob, value)
            found = backend.search(Q, k)[1]
            seconds = median_seconds(functools.partial(backend.search, Q, k), repeat=repeat)
            qps = len(Q) / max(seconds, 1e-12)
            rows.append(AnnRow(spec.name, spec.knob, value, neighbour_recall(found, truth, k),
                               qps, qps / exact_qps, build_s, options))
        done += len(spec.values)
        if progress is not None:
            progress(done, total)
        del backend
    return rows


def index_vectors(index: Any) -> tuple[np.ndarray, Metric]:
    """The stored vectors of a dense exact index and its metric (a hybrid index: its dense
    half). Raises InputError for a sparse index and for one whose backend keeps no vectors."""
    dense = getattr(index, "dense", index)
    if dense.sparse:
        raise InputError("this index holds sparse vectors (a word or character encoder), and "
                         "the ANN backends search dense ones; benchmark an index built with "
                         "encoder='student' or 'minilm', or give vectors")
    try:
        X = dense.stored_vectors()
    except ValueError:
        raise InputError(f"this index is served by backend='{dense.backend_kind.value}', which "
                         "keeps no vectors to benchmark; use an index built with "
                         "backend='exact', or give vectors") from None
    return np.ascontiguousarray(X, dtype=np.float32), dense.metric


def benchmark_ann(vectors: Any, *, metric: str | Metric = "cosine", queries: int | None = None,
                  k: int = 10, recall: float = 0.95, seed: int = 0, max_docs: int | None = None,
                  sweeps: Sequence[Sweep] = DEFAULT_SWEEPS, repeat: int = 3,
                  progress: Progress | None = None) -> AnnReport:
    """Exact search and each ANN sweep on ``vectors`` (float32 ``(n, d)``), with ``queries``
    held-apart rows as queries (default: a tenth of the rows, at most 1,000).

    ``max_docs`` first draws a seeded sample of that many rows. Raises InputError for sparse
    vectors, fewer than two usable rows, or a recall target outside (0, 1].
    """
    recall, k = check_recall(recall), check_k(k)
    seed, max_docs = check_seed(seed), check_max_docs(max_docs)
    metric = Metric(metric) if not isinstance(metric, Metric) else metric
    if is_sparse(vectors):
        raise InputError("the ANN backends search dense vectors, and these are sparse; use "
                         "a dense encoder's vectors (student, minilm)")
    X = check_vectors(vectors)
    notes = []
    if metric.normalizes:
        placed = row_norms(X) > 0
        if not placed.all():
            notes.append(f"{int((~placed).sum())} zero vector(s) have no direction and are "
                         "left out")
            X = X[placed]
        X = np.ascontiguousarray(l2_normalize(X), dtype=np.float32)
    picked = sample_positions(len(X), max_docs, seed)
    sampled_from = None if picked is None else len(X)
    if picked is not None:
        X = X[picked]
        notes.append(f"sampled {len(X):,} of {sampled_from:,} vectors (max_docs={max_docs}, "
                     f"seed {seed})")
    database, held = _hold_apart(X, queries, seed)
    k = min(k, len(database))
    inner = _inner(metric)
    truth, exact_qps = exact_neighbours(database, held, k, inner, repeat=repeat)
    report = AnnReport(len(database), len(held), X.shape[1], metric.value, k, recall,
                       [AnnRow("exact", "", None, 1.0, exact_qps, 1.0, 0.0)],
                       sampled_from=sampled_from, notes=notes)
    report.rows += sweep(database, held, truth, sweeps, k=k, inner=inner, exact_qps=exact_qps,
                         repeat=repeat, progress=progress, skipped=report.skipped)
    return report


def _hold_apart(X: np.ndarray, queries: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(database, queries)``: a seeded sample of rows taken out of the data as queries."""
    n = len(X)
    if n < 2:
        raise InputError(f"got {n} vector(s); holding queries apart needs at least two")
    count = min(1000, max(1, n // 10)) if queries is None else check_int(queries, "queries",
                                                                         minimum=1)
    if count > n - 1:
        raise InputError(f"queries={count} is too many: {n} vectors leave room for 1 to {n - 1} "
                         "held-apart queries (the rest are searched)")
    rng = np.random.default_rng(seed)
    held = np.zeros(n, dtype=bool)
    held[rng.choice(n, count, replace=False)] = True
    return np.ascontiguousarray(X[~held]), np.ascontiguousarray(X[held])

