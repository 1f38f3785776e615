"""The distillation losses (torch; imported only by training code).

All take student logits ``z_s`` ``(n, C)`` and, where relevant, teacher logits ``z_t``
``(n, C)``; they return the mean loss over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["add_teacher_noise", "cosine_loss", "hard_loss", "logit_loss", "soft_loss",
           "soft_target_loss"]


def hard_loss(z_s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with the true labels ``y`` (int64 ``(n,)``)."""
    return F.cross_entropy(z_s, y)


def soft_loss(z_s: torch.Tensor, z_t: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * CE(softmax(z_t/T), softmax(z_s/T))``, Hinton, Vinyals and Dean (2015).

    The ``T^2`` factor keeps the gradient with respect to ``z_s`` on the same scale whatever
    ``T``: the gradient of the unscaled term is ``(p_s - p_t) / T``, which for large ``T`` is
    about ``(z_s - z_t) / (C T^2)``.
    """
    t = float(temperature)
    target = F.softmax(z_t / t, dim=1)
    return -(target * F.log_softmax(z_s / t, dim=1)).sum(dim=1).mean() * (t * t)


def soft_target_loss(z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor | None, *,
                     temperature: float, alpha: float) -> torch.Tensor:
    """``alpha * T^2 * CE(soft_t, soft_s) + (1 - alpha) * CE(y, softmax(z_s))``.

    ``y`` may be None when ``alpha`` is 1 (no hard labels, e.g. for synthetic texts).
    """
    loss = alpha * soft_loss(z_s, z_t, temperature)
    if alpha < 1.0:
        if y is None:
            raise ValueError("alpha < 1 needs the hard labels y")
        loss = loss + (1.0 - alpha) * hard_loss(z_s, y)
    return loss


def logit_loss(z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
    """Squared error between student and teacher logits (Ba & Caruana 2014).

    Both are centred per row first: the teacher hands over log-probabilities, which are
    logits up to a per-row constant, and that constant carries no information.
    """
    ds = z_s - z_s.mean(dim=1, keepdim=True)
    dt = z_t - z_t.mean(dim=1, keepdim=True)
    return ((ds - dt) ** 2).sum(dim=1).mean() / z_s.shape[1]


def add_teacher_noise(z_t: torch.Tensor, *, std: float, fraction: float,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Teacher logits with Gaussian noise ``N(0, std^2)`` on a random ``fraction`` of the rows
    (Sau & Balasubramanian 2016: the noise regularises like dropout on the targets)."""
    if std == 0 or fraction == 0:
        return z_t
    noise = torch.randn(z_t.shape, generator=generator, dtype=z_t.dtype) * std
    rows = (torch.rand(z_t.shape[0], generator=generator) < fraction).to(z_t.dtype)
    return z_t + noise * rows[:, None]


def cosine_loss(v_s: torch.Tensor, v_t: torch.Tensor) -> torch.Tensor:
    """``1 - cos(v_s, v_t)`` averaged over the batch."""
    return (1.0 - F.cosine_similarity(v_s, v_t, dim=1, eps=1e-8)).mean()
