"""Train a student from a teacher: the transfer set, the training loop, sweeps.

Two steps, so that a sweep pays for the teacher once:

1. :func:`~simtools.distill.transfer.prepare` fits the teacher and labels the transfer set
   (:mod:`.transfer`);
2. :func:`train_student` trains one student (torch ``EmbeddingBag(sparse=True)`` + SparseAdam,
   about 40x faster than dense Adam here) and returns the numpy :class:`StudentClassifier`.

:func:`distill` runs both; :func:`sweep` trains one student per configuration on one prepared
transfer set. torch is imported here and in :mod:`.losses` only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..evaluation import score_predictions
from ..student.featurizer import HashingFeaturizer, script_pages
from ..student.model import StudentClassifier
from ..student.quantize import quantize_rows
from .config import DistillConfig, Method
from .transfer import Prepared, prepare

__all__ = ["Prepared", "TrainResult", "distill", "knn_recall", "prepare", "sweep", "train_student"]

logger = logging.getLogger(__name__)

ProgressFn = Callable[..., Iterable[Any]]


@dataclass
class TrainResult:
    """One trained student with its per-epoch history and a summary of its scores."""

    student: StudentClassifier
    config: DistillConfig
    history: list[dict[str, Any]]
    summary: dict[str, Any]


def _featurizer(config: DistillConfig) -> HashingFeaturizer:
    return HashingFeaturizer(buckets=config.buckets, char_ngrams=config.char_ngrams,
                             word_ngrams=config.word_ngrams, max_chars=config.max_chars)


def _pca(vectors: np.ndarray, k: int) -> np.ndarray:
    """Top-``k`` right singular vectors of the (uncentred) rows, float32 ``(k, D)``.

    Uncentred, so that dot products (cosines of the normalised teacher vectors) are what the
    projection keeps best.
    """
    _, _, vt = np.linalg.svd(vectors.astype(np.float64), full_matrices=False)
    return np.ascontiguousarray(vt[: min(k, vt.shape[0])], dtype=np.float32)


def knn_recall(queries: np.ndarray, reference: np.ndarray, k: int = 10) -> float:
    """Mean overlap of the cosine top-``k`` neighbours (self excluded) of each row under two
    embeddings of the same texts: ``|kNN_q(i) & kNN_ref(i)| / k``."""
    def top(x: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        return np.argpartition(-sims, k, axis=1)[:, :k]

    k = min(k, len(queries) - 1)
    if k < 1:
        return float("nan")
    a, b = top(queries.astype(np.float32)), top(reference.astype(np.float32))
    return float(np.mean([len(np.intersect1d(r, s)) / k for r, s in zip(a, b, strict=True)]))


class _Bags:
    """Hashed features of many texts, for slicing batches in torch EmbeddingBag layout."""

    def __init__(self, featurizer: HashingFeaturizer, texts: Sequence[str]) -> None:
        ids: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        for i in range(0, len(texts), 4096):
            feats = featurizer.transform(texts[i: i + 4096])
            flat, _ = feats.bags()
            ids.append(flat)
            counts.append(feats.counts)
        self.ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        self.counts = np.concatenate(counts) if counts else np.zeros(0, np.int64)
        self.offsets = np.zeros(len(self.counts), dtype=np.int64)
        np.cumsum(self.counts[:-1], out=self.offsets[1:])

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        counts = self.counts[rows]
        starts = np.zeros(len(rows), dtype=np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        index = np.repeat(self.offsets[rows] - starts, counts) + np.arange(int(counts.sum()))
        return self.ids[index], starts


def _make_net(buckets: int, dim: int, classes: int, proj_dim: int | None) -> Any:
    import torch
    from torch import nn

    class StudentNet(nn.Module):
        """Mean of hashed n-gram embeddings -> linear head (and optional projection)."""

        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.EmbeddingBag(buckets, dim, mode="mean", sparse=True)
            nn.init.uniform_(self.embedding.weight, -1.0 / dim, 1.0 / dim)
            self.head = nn.Linear(dim, classes)
            self.proj = nn.Linear(dim, proj_dim) if proj_dim else None

        def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> tuple[Any, Any]:
            pooled = self.embedding(ids, offsets)
            return self.head(pooled), (self.proj(pooled) if self.proj is not None else None)

    return StudentNet()


def _identity_progress(iterable: Iterable[Any], **_: Any) -> Iterator[Any]:
    yield from iterable


def _transfer_rows(prepared: Prepared, config: DistillConfig) -> np.ndarray:
    """The rows one student trains on: the labelled texts alone for ``none``; for the other
    methods the unlabelled texts too, and the perturbed copies with ``compression``."""
    rows = np.arange(len(prepared.texts))
    if config.uses(Method.NONE):
        return rows[~prepared.synthetic]
    if not config.uses(Method.COMPRESSION):
        return rows[~prepared.perturbed]
    return rows


def train_student(prepared: Prepared, config: DistillConfig, *,
                  progress: ProgressFn | None = None) -> TrainResult:
    """Train one student on a prepared transfer set; returns it with its history."""
    import torch

    progress = progress or _identity_progress
    threads = torch.get_num_threads()
    # One thread: the sparse updates are small, and on a busy 2-core machine torch's second
    # thread spin-waits (measured 20x slower per step with two threads under load).
    torch.set_num_threads(1)
    try:
        return _train(prepared, config, progress, torch)
    finally:
        torch.set_num_threads(threads)


def _train(prepared: Prepared, config: DistillConfig, progress: ProgressFn, torch: Any) -> TrainResult:
    from . import losses
    from .diagnostics import layer_grad_norms

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    methods = set(config.methods)
    if methods - {Method.NONE} and prepared.teacher_logits is None:
        raise ValueError(f"method {config.method_string} needs the teacher's outputs; "
                         "prepare() the transfer set with this configuration")
    rows = _transfer_rows(prepared, config)
    featurizer = _featurizer(config)
    bags = _Bags(featurizer, [prepared.texts[i] for i in rows])
    y_all = torch.from_numpy(prepared.y[rows])
    zt_all = (torch.from_numpy(prepared.teacher_logits[rows])
              if prepared.teacher_logits is not None else None)
    targets, components = (_embedding_targets(prepared, rows, config, torch)
                           if Method.EMBEDDING in methods else (None, None))
    classes = len(prepared.labels)
    net = _make_net(config.buckets, config.dim, classes,
                    None if components is None else components.shape[0])
    optimisers, schedules = _optimisers(net, config, len(rows), torch)
    objective = losses.Objective.from_config(config, methods)
    history: list[dict[str, Any]] = []
    val_bags = _Bags(featurizer, prepared.val_texts)
    val_ids, val_offsets = torch.from_numpy(val_bags.ids), torch.from_numpy(val_bags.offsets)
    n_batches = (len(rows) + config.batch_size - 1) // config.batch_size
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        net.train()
        order = rng.permutation(len(rows))
        parts: dict[str, float] = {}
        norms: dict[str, float] = {}
        sampled = 0
        # gradient norms of every layer, averaged over about 50 batches of each epoch
        every = max(1, n_batches // 50)
        total = 0.0
        batches = [order[i: i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        for step, batch in enumerate(progress(batches, length=n_batches,
                                              label=f"epoch {epoch}/{config.epochs}")):
            ids, offsets = bags.batch(batch)
            index = torch.from_numpy(batch)
            z_s, v_s = net(torch.from_numpy(ids), torch.from_numpy(offsets))
            terms = objective.terms(
                z_s, y_all[index], z_t=None if zt_all is None else zt_all[index], v_s=v_s,
                v_t=None if targets is None else targets[index], generator=generator)
            loss: Any = sum(terms.values())
            for optimiser in optimisers:
                optimiser.zero_grad()
            loss.backward()
            if step % every == 0:
                sampled += 1
                for name, value in layer_grad_norms(net).items():
                    norms[name] = norms.get(name, 0.0) + value
            for optimiser in optimisers:
                optimiser.step()
            for schedule in schedules:
                schedule.step()
            total += loss.item()
            for name, term in terms.items():
                parts[name] = parts.get(name, 0.0) + term.item()
        net.eval()
        with torch.no_grad():
            val_logits, _ = net(val_ids, val_offsets)
        scores = score_predictions(prepared.val_y, val_logits.numpy().argmax(axis=1), classes)
        record = {"epoch": epoch, "loss": total / n_batches,
                  "loss_terms": {k: v / n_batches for k, v in parts.items()},
                  "val_accuracy": scores["accuracy"], "val_macro_f1": scores["macro_f1"],
                  "grad_norm": {k: v / max(sampled, 1) for k, v in norms.items()},
                  "seconds": round(time.perf_counter() - started, 3)}
        history.append(record)
        _log_epoch(record, config.epochs)
    student = _to_numpy(net, featurizer, prepared.labels, config, components)
    summary = _summarise(student, prepared, config, history)
    student.config["training"] = summary
    student.config["known_pages"] = script_pages(prepared.texts)
    student.history = history
    return TrainResult(student, config, history, summary)


def _embedding_targets(prepared: Prepared, rows: np.ndarray, config: DistillConfig,
                       torch: Any) -> tuple[Any, np.ndarray]:
    """The teacher's sentence embeddings of the transfer rows in a fixed PCA of the teacher's
    space (fitted on the real texts, not the perturbed copies), and that PCA's components."""
    if prepared.teacher_emb is None:
        raise ValueError("method 'embedding' needs a teacher with sentence embeddings; "
                         "use a teacher with an embedding member (e.g. teacher='default')")
    components = _pca(prepared.teacher_emb[~prepared.perturbed], config.embedding_dim)
    targets = torch.from_numpy(np.ascontiguousarray(prepared.teacher_emb[rows] @ components.T))
    return targets, components


def _optimisers(net: Any, config: DistillConfig, n_rows: int,
                torch: Any) -> tuple[list[Any], list[Any]]:
    """SparseAdam for the embedding table, Adam at a fifth of the rate for the rest, and the
    learning-rate schedules (fastText's linear fall to zero, or none)."""
    sparse_opt = torch.optim.SparseAdam(list(net.embedding.parameters()), lr=config.lr)
    dense_params = [p for name, p in net.named_parameters() if not name.startswith("embedding")]
    dense_opt = torch.optim.Adam(dense_params, lr=config.lr * 0.2)
    schedules = []
    if config.lr_schedule == "linear":
        total_steps = max(1, config.epochs * ((n_rows + config.batch_size - 1)
                                              // config.batch_size))
        schedules = [torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: max(0.0, 1.0 - step / total_steps)) for opt in (sparse_opt, dense_opt)]
    return [sparse_opt, dense_opt], schedules


def _log_epoch(record: dict[str, Any], epochs: int) -> None:
    logger.info("epoch %d/%d loss %.4f val macro-F1 %.4f accuracy %.4f grad norms %s",
                record["epoch"], epochs, record["loss"], record["val_macro_f1"],
                record["val_accuracy"],
                ", ".join(f"{k} {v:.3g}" for k, v in record["grad_norm"].items()))


def _to_numpy(net: Any, featurizer: HashingFeaturizer, labels: list[str], config: DistillConfig,
              components: np.ndarray | None) -> StudentClassifier:
    table = net.embedding.weight.detach().numpy().astype(np.float32)
    scale = None
    if config.quantize:
        table, scale = quantize_rows(table)
    proj_w = proj_b = None
    extra: dict[str, np.ndarray] = {}
    if net.proj is not None:
        proj_w = np.ascontiguousarray(net.proj.weight.detach().numpy().T)
        proj_b = net.proj.bias.detach().numpy().copy()
        # maps teacher vectors into the student's output space: t @ teacher_pca.T
        if components is not None:
            extra["teacher_pca"] = components
    return StudentClassifier(
        featurizer, labels, embeddings=np.ascontiguousarray(table), scale=scale,
        head_weight=np.ascontiguousarray(net.head.weight.detach().numpy().T),
        head_bias=net.head.bias.detach().numpy().copy(), proj_weight=proj_w, proj_bias=proj_b,
        extra=extra, config={"distill": config.to_dict()})


def _summarise(student: StudentClassifier, prepared: Prepared, config: DistillConfig,
               history: list[dict[str, Any]]) -> dict[str, Any]:
    # scored with the saved (numpy, possibly int8) model: what `simtools evaluate` will report
    pred = student.predict_logits(prepared.val_texts, strict=True).argmax(axis=1)
    scores = score_predictions(prepared.val_y, pred, len(prepared.labels))
    summary: dict[str, Any] = {
        "methods": [m.value for m in config.methods], "temperature": config.temperature,
        "alpha": config.alpha, "epochs": config.epochs, "teacher": prepared.teacher_summary,
        "transfer_texts": int(len(_transfer_rows(prepared, config))),
        "val_accuracy": scores["accuracy"], "val_macro_f1": scores["macro_f1"],
        "val_n": len(prepared.val_texts),
        "train_seconds": round(sum(h["seconds"] for h in history), 2),
    }
    if prepared.val_teacher_emb is not None:
        summary["val_knn_recall_at_10"] = knn_recall(student.embed(prepared.val_texts),
                                                     prepared.val_teacher_emb, 10)
    teacher_f1 = prepared.teacher_summary.get("val_macro_f1")
    if teacher_f1:
        summary["retained_of_teacher"] = scores["macro_f1"] / teacher_f1
    return summary


def distill(data: Any, config: DistillConfig | None = None, *, teacher: Any = None,
            unlabelled: Sequence[str] | None = None,
            progress: ProgressFn | None = None) -> TrainResult:
    """Fit the teacher, build the transfer set and train one student."""
    config = config or DistillConfig()
    prepared = prepare(data, config, teacher=teacher, unlabelled=unlabelled)
    return train_student(prepared, config, progress=progress)


def sweep(data: Any, base: DistillConfig, *, methods: Sequence[Any] | None = None,
          temperatures: Sequence[float] | None = None, alphas: Sequence[float] | None = None,
          teacher: Any = None, unlabelled: Sequence[str] | None = None,
          progress: ProgressFn | None = None) -> list[TrainResult]:
    """One student per (methods, temperature, alpha) setting, sharing one teacher and one
    transfer set; results in setting order (pick the best by ``summary["val_macro_f1"]``)."""
    configs = [replace(base, methods=m, temperature=float(t), alpha=float(a))
               for m in (methods or [base.methods])
               for t in (temperatures or [base.temperature])
               for a in (alphas or [base.alpha])]
    prepared = prepare(data, configs, teacher=teacher, unlabelled=unlabelled)
    results = []
    for config in configs:
        logger.info("training student: methods %s", config.description)
        results.append(train_student(prepared, config, progress=progress))
    return results
