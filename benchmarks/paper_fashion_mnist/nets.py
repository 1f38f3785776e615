"""The nets (an MLP, or several trained side by side as one ``StackedMLP``), the training
loop, and the losses it trains with."""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

from simtools.distill.losses import soft_target_loss

from .data import jitter


def make_mlp(n_inputs: int, hidden: int, *, dropout: float = 0.0, input_dropout: float = 0.0):
    """Two hidden ReLU layers of `hidden` units; dropout 0 gives the unregularised net."""
    layers: list[nn.Module] = [nn.Flatten()]
    if input_dropout > 0:
        layers.append(nn.Dropout(input_dropout))
    for fan_in in (n_inputs, hidden):
        layers += [nn.Linear(fan_in, hidden), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden, 10))
    return nn.Sequential(*layers)


def _dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout, as ``nn.functional.dropout``: zero each unit with probability p
    and scale the rest by 1 / (1 - p).

    The mask is drawn with ``torch.rand`` rather than ``bernoulli_``. Called alone, that is
    2.5x faster on 2 CPU cores, but inside the training loop the difference stays within noise
    (``benchmarks/bench_train_step.py``). Seeds 1 and 2 of the committed table used it.
    """
    return x * (torch.rand_like(x) >= p) * (1.0 / (1.0 - p))


class StackedMLP(nn.Module):
    """k nets of :func:`make_mlp`'s shape, trained side by side: one batched matmul per layer.

    Built from k nets made by :func:`make_mlp` (so each keeps its own seeded initial weights);
    the nets stay independent: Adam works element by element, and the training loss is the sum
    of the members' own losses. On a GPU, k small nets then cost about one net's kernel
    launches per step, which is what bounds a 2x1200 MLP at batch 128.
    """

    def __init__(self, nets: list[nn.Sequential]) -> None:
        super().__init__()
        linears = [[m for m in net if isinstance(m, nn.Linear)] for net in nets]
        # make_mlp: Flatten, [Dropout(input)], then Linear, ReLU, [Dropout] twice, Linear
        rates = {
            (
                net[1].p if isinstance(net[1], nn.Dropout) else 0.0,
                next((m.p for m in list(net)[3:] if isinstance(m, nn.Dropout)), 0.0),
            )
            for net in nets
        }
        shapes = {tuple(tuple(m.weight.shape) for m in ls) for ls in linears}
        if len(rates) != 1 or len(shapes) != 1 or any(len(ls) != 3 for ls in linears):
            raise ValueError("stacked nets must all have make_mlp's shape and dropout rates")
        self.input_dropout, self.dropout = rates.pop()
        # weight (k, fan_in, fan_out), bias (k, 1, fan_out): x (k, b, fan_in) -> baddbmm
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].weight.detach().T for ls in linears]).contiguous())
            for i in range(3)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([ls[i].bias.detach()[None, :] for ls in linears]))
            for i in range(3)
        )

    def __len__(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (k, b, h, w) or (b, h, w) for all members alike -> logits (k, b, 10)."""
        x = x.flatten(start_dim=-2)
        if x.dim() == 2:
            x = x.expand(len(self), *x.shape)
        if self.input_dropout and self.training:
            x = _dropout(x, self.input_dropout)
        for i in range(2):
            x = torch.relu(torch.baddbmm(self.biases[i], x, self.weights[i]))
            if self.dropout and self.training:
                x = _dropout(x, self.dropout)
        return torch.baddbmm(self.biases[2], x, self.weights[2])


@dataclasses.dataclass
class TrainSpec:
    """How one net is trained: plain Adam with a cosine learning-rate decay to zero."""

    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    max_shift: int = 0  # jitter; 0 leaves the inputs as they are
    fused_adam: bool = True  # False: torch's default Adam (benchmarks/bench_train_step.py)


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def train(
    model: StackedMLP,
    images: torch.Tensor,
    labels: torch.Tensor,
    spec: TrainSpec,
    *,
    loss_fns: list[LossFn],
    targets: list[torch.Tensor | None] | None = None,
    seeds: list[int],
) -> StackedMLP:
    """Train the k nets of `model` in place, side by side; returns `model` in eval mode.

    Member i learns from loss_fns[i](logits, labels, targets_batch), with targets[i] (n, 10)
    the teacher logits it distils (or None), and draws its batch order (and jitter) from
    seeds[i]. Members with one seed share one batch order.
    """
    k, n, device = len(model), len(labels), images.device
    targets = targets or [None] * k
    if not len(loss_fns) == len(targets) == len(seeds) == k:
        raise ValueError(f"{k} nets need {k} loss functions, targets and seeds")
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    shared = len(set(seeds)) == 1
    # The fused Adam is one kernel per step instead of a dozen small ones: on a GPU that saves
    # launches, on 2 CPU cores memory passes (7 ms a teacher step instead of 30 to 50). Adam
    # works element by element, so one optimiser over the stacked weights is k independent ones.
    optimiser = torch.optim.Adam(model.parameters(), lr=spec.lr, fused=spec.fused_adam or None)
    steps_per_epoch = math.ceil(n / spec.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, T_max=spec.epochs * steps_per_epoch
    )
    model.train()
    t0 = time.perf_counter()
    for epoch in range(spec.epochs):
        # The running loss stays on the device: reading it every step would stall a GPU.
        total, n_batches = torch.zeros((), device=device), 0
        orders = [torch.randperm(n, generator=g) for g in generators[: 1 if shared else k]]
        order = torch.stack(orders).to(device)  # (1 or k, n)
        for start in range(0, n, spec.batch_size):
            batch = order[:, start : start + spec.batch_size]
            if shared:
                x = jitter(images[batch[0]], spec.max_shift, generators[0])
            else:
                x = torch.stack(
                    [jitter(images[b], spec.max_shift, g) for b, g in zip(batch, generators)]
                )
            logits = model(x)
            rows = batch.expand(k, -1)
            # Started at a zero tensor, which adds nothing: the sum is a tensor for the checker.
            loss = sum(
                (
                    loss_fn(logits[i], labels[rows[i]], None if t is None else t[rows[i]])
                    for i, (loss_fn, t) in enumerate(zip(loss_fns, targets))
                ),
                torch.zeros((), device=device),
            )
            # Keep the gradient buffers between steps: re-allocating the 1200x1200 ones every
            # step was several times slower on the shared benchmark machine.
            optimiser.zero_grad(set_to_none=False)
            loss.backward()
            optimiser.step()
            schedule.step()
            total, n_batches = total + loss.detach() / k, n_batches + 1
        # Progress only, to stderr: long runs on a shared machine need a visible pulse.
        print(
            f"    epoch {epoch + 1}/{spec.epochs}  mean loss {float(total) / n_batches:.4f}"
            f"  {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    model.eval()
    return model


@torch.no_grad()
def logits_of(model: StackedMLP, images: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Logits (k, n, 10) of every net of `model` in eval mode (no dropout), in batches."""
    model.eval()
    parts = [model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
    return torch.cat(parts, dim=1)


def count_errors(logits: torch.Tensor, labels: torch.Tensor) -> int:
    return int((logits.argmax(dim=1) != labels).sum())


def hard_label_loss(logits, labels, _targets):
    return nn.functional.cross_entropy(logits, labels)


def soft_loss(temperature: float, alpha: float) -> LossFn:
    def loss(logits, labels, teacher_logits):
        return soft_target_loss(
            logits, teacher_logits, labels, temperature=temperature, alpha=alpha
        )

    return loss
