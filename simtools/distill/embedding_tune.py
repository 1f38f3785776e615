"""Fine-tuning static token vectors on the teacher's sentence embeddings (torch, training only).

The student's vector of a text is the mean of its tokens' rows of one table; training moves the
rows so that this mean points where the teacher's embedding of the same text points (a cosine
loss, or the squared error between unit vectors), over a large unlabelled transfer set. This is
model2vec's "tokenlearn" step, here as an ``EmbeddingBag`` trained with Adam. Only rows of
tokens the transfer set holds move; the others keep their distilled static vectors.

Needs the train extra (torch).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TuneConfig", "fine_tune"]

logger = logging.getLogger(__name__)

#: Called after each epoch with (epoch, the current table): extra figures for the history.
EpochHook = Callable[[int, np.ndarray], dict[str, Any]]


@dataclass(frozen=True)
class TuneConfig:
    """Settings of :func:`fine_tune`."""

    epochs: int = 6
    batch_size: int = 128
    lr: float = 0.003
    loss: str = "cosine"  # or "mse" (between unit vectors)
    #: weight of an L2 pull of every row towards its starting value (0: none)
    anchor: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0 or self.anchor < 0:
            raise ValueError(f"invalid fine-tuning settings: {self}")
        if self.loss not in ("cosine", "mse"):
            raise ValueError(f"loss must be 'cosine' or 'mse', got {self.loss!r}")


def fine_tune(table: np.ndarray, ids: np.ndarray, starts: np.ndarray, targets: np.ndarray,
              config: TuneConfig = TuneConfig(), *, on_epoch: EpochHook | None = None,
              threads: int | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The fine-tuned table float32 ``(vocab, dim)`` and the per-epoch history.

    ``ids``/``starts``: the texts' token ids concatenated and their ``(n + 1,)`` offsets (as
    :meth:`simtools.student.wordpiece.WordPiece.encode` returns them); ``targets`` float32
    ``(n, dim)``: the teacher's embeddings in the table's space. Texts without a token are
    skipped.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(config.seed)
    counts = np.diff(starts)
    keep = np.flatnonzero(counts > 0)
    initial = torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32))
    # sparse gradients and SparseAdam: a step touches the rows of its batch only (dense Adam
    # rewrites all 30,522 x dim rows each step, several times slower)
    bag = torch.nn.EmbeddingBag.from_pretrained(initial.clone(), freeze=False, mode="mean",
                                                sparse=True)
    optimiser = torch.optim.SparseAdam(list(bag.parameters()), lr=config.lr)
    y = torch.nn.functional.normalize(torch.from_numpy(np.asarray(targets, np.float32)), dim=1)
    rng = np.random.default_rng(config.seed)
    history: list[dict[str, Any]] = []
    if on_epoch is not None:
        history.append({"epoch": 0, **on_epoch(0, bag.weight.detach().numpy().copy())})
    for epoch in range(1, config.epochs + 1):
        started, total, seen = time.perf_counter(), 0.0, 0
        for batch in np.array_split(rng.permutation(keep),
                                    max(1, len(keep) // config.batch_size)):
            rows, offsets = _gather(ids, starts, batch)
            loss = _loss(bag(rows, offsets), y[torch.from_numpy(batch)], config.loss)
            if config.anchor:
                touched = torch.unique(rows)
                moved = torch.nn.functional.embedding(touched, bag.weight, sparse=True)
                loss = loss + config.anchor * (moved - initial[touched]).pow(2).sum(dim=1).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch)
            seen += len(batch)
        record: dict[str, Any] = {"epoch": epoch, "loss": total / max(seen, 1),
                                  "seconds": round(time.perf_counter() - started, 1)}
        if on_epoch is not None:
            record.update(on_epoch(epoch, bag.weight.detach().numpy().copy()))
        logger.info("epoch %d: %s", epoch, record)
        history.append(record)
    return np.ascontiguousarray(bag.weight.detach().numpy(), dtype=np.float32), history


def _gather(ids: np.ndarray, starts: np.ndarray, batch: np.ndarray) -> tuple[Any, Any]:
    """The token ids of the texts ``batch``, concatenated, and each text's offset (torch)."""
    import torch

    lengths = starts[batch + 1] - starts[batch]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    # position j of the output reads ids[starts[text] + (j - offset of text)]
    flat = np.repeat(starts[batch] - offsets, lengths) + np.arange(int(lengths.sum()))
    return torch.from_numpy(ids[flat].astype(np.int64)), torch.from_numpy(offsets)


def _loss(out: Any, y: Any, kind: str) -> Any:
    import torch

    unit = torch.nn.functional.normalize(out, dim=1)
    if kind == "cosine":
        return (1.0 - (unit * y).sum(dim=1)).mean()
    return (unit - y).pow(2).sum(dim=1).mean()

