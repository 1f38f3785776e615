"""The distillation objective and its losses (torch; imported only by training code).

All losses take student logits ``z_s`` ``(n, C)`` and, where relevant, teacher logits ``z_t``
``(n, C)``; they return the mean loss over the batch. :class:`Objective` is the one place that
decides which of them a training step adds up, one term per method of the config; the trainer
calls it, and so does the Fashion-MNIST reproduction through :func:`soft_target_loss`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import DistillConfig, Method

__all__ = ["Objective", "add_teacher_noise", "cosine_loss", "hard_loss", "logit_loss",
           "soft_loss", "soft_target_loss"]

#: the methods whose term already holds the labels (through the teacher's logits)
LABEL_METHODS = frozenset({Method.SOFT, Method.LOGITS, Method.NOISY})


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

    ``y`` may be None when ``alpha`` is 1 (no hard labels, e.g. for synthetic texts); rows with
    ``y == -1`` (unlabelled transfer texts) take the soft term only.
    """
    terms = _soft_target_terms(z_s, z_t, y, temperature=temperature, alpha=alpha)
    return terms["soft"] + terms["hard"] if "hard" in terms else terms["soft"]


def _soft_target_terms(z_s: torch.Tensor, z_t: torch.Tensor, y: torch.Tensor | None, *,
                       temperature: float, alpha: float) -> dict[str, torch.Tensor]:
    terms = {"soft": alpha * soft_loss(z_s, z_t, temperature)}
    if alpha < 1.0:
        if y is None:
            raise ValueError("alpha < 1 needs the hard labels y")
        labelled = y >= 0
        if bool(labelled.all()):
            terms["hard"] = (1.0 - alpha) * hard_loss(z_s, y)
        elif bool(labelled.any()):
            terms["hard"] = (1.0 - alpha) * hard_loss(z_s[labelled], y[labelled])
    return terms


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


@dataclass(frozen=True)
class Objective:
    """What a training step minimises: a term per method of the config, summed.

    - ``soft``: Hinton's soft targets at the config's temperature, plus ``1 - alpha`` of the hard
      labels (on the labelled rows);
    - ``logits``, or ``noisy`` without ``soft``: Ba & Caruana's squared error on the logits (the
      teacher's logits noised first for ``noisy``, Sau & Balasubramanian);
    - ``compression`` alone: the teacher's probabilities (T = 1) on the grown transfer set;
    - ``embedding``: ``embedding_weight`` times ``1 - cos`` to the teacher's projected vectors;
    - no label-carrying method (``none``, ``embedding`` alone): the hard labels.
    """

    methods: frozenset[Method]
    temperature: float = 4.0
    alpha: float = 0.5
    noise_std: float = 0.0
    noise_fraction: float = 0.0
    embedding_weight: float = 1.0

    @classmethod
    def from_config(cls, config: DistillConfig,
                    methods: Iterable[Method] | None = None) -> Objective:
        return cls(frozenset(config.methods if methods is None else methods),
                   temperature=config.temperature, alpha=config.alpha,
                   noise_std=config.noise_std, noise_fraction=config.noise_fraction,
                   embedding_weight=config.embedding_weight)

    @property
    def needs_teacher_logits(self) -> bool:
        return bool(self.methods & (LABEL_METHODS | {Method.COMPRESSION}))

    def terms(self, z_s: torch.Tensor, y: torch.Tensor, *, z_t: torch.Tensor | None = None,
              v_s: torch.Tensor | None = None, v_t: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The named terms of one batch (``y == -1``: unlabelled rows); their sum is the loss."""
        methods = self.methods
        terms: dict[str, torch.Tensor] = {}
        if self.needs_teacher_logits and z_t is None:
            raise ValueError("these methods need the teacher's logits z_t")
        if z_t is not None and Method.NOISY in methods:
            z_t = add_teacher_noise(z_t, std=self.noise_std, fraction=self.noise_fraction,
                                    generator=generator)
        label_term = bool(methods & LABEL_METHODS)
        if Method.SOFT in methods:
            assert z_t is not None
            terms.update(_soft_target_terms(z_s, z_t, y, temperature=self.temperature,
                                            alpha=self.alpha))
        if Method.LOGITS in methods or (Method.NOISY in methods and Method.SOFT not in methods):
            assert z_t is not None
            terms["logits"] = logit_loss(z_s, z_t)
        if Method.COMPRESSION in methods and not label_term:
            assert z_t is not None
            terms["soft"] = soft_loss(z_s, z_t, 1.0)
        if Method.EMBEDDING in methods:
            if v_s is None or v_t is None:
                raise ValueError("method 'embedding' needs the student and teacher vectors")
            terms["embedding"] = self.embedding_weight * cosine_loss(v_s, v_t)
        has_y = y >= 0
        if not label_term and Method.COMPRESSION not in methods and bool(has_y.any()):
            terms["hard"] = hard_loss(z_s[has_y], y[has_y])
        return terms
