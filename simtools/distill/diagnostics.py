"""Training diagnostics: per-layer gradient norms, and the vanishing-gradient demonstration.

:func:`layer_grad_norms` is what a trainer logs after each ``backward()``. The
:func:`vanishing_gradients` experiment trains the same deep MLP (same seed, same data) with
different activations and records how large each layer's gradient is: through a sigmoid every
layer multiplies the backward signal by a derivative of at most 0.25, so the first layers of a
deep sigmoid net barely learn, while ReLU passes its positive range through unchanged.

torch and matplotlib are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._validation import check_int

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "GradientResult",
    "layer_grad_norms",
    "plot_gradients",
    "vanishing_gradients",
]

logger = logging.getLogger(__name__)

_ACTIVATIONS = ("sigmoid", "relu", "tanh", "gelu", "leaky_relu")


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"this diagnostic needs {module!r}, which is not installed; run: "
                          f'pip install "simtools[{extra}]"') from e


def layer_grad_norms(module: torch.nn.Module) -> dict[str, float]:
    """L2 norm of the gradient of every layer that owns parameters, after ``backward()``.

    A layer is a submodule with parameters of its own (not counting its children's); its norm
    is taken over all of those parameters together (weight and bias), i.e.
    ``sqrt(sum(||g_p||^2))``. Keys are the submodule names from ``named_modules()`` ("" for the
    root when it owns parameters directly, reported as ``"<root>"``), in definition order.
    A parameter with no gradient yet (frozen, or before the first backward) counts as 0; a
    layer whose parameters all lack gradients is reported as 0.0, so the keys are stable from
    one epoch to the next.
    """
    import torch

    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    norms: dict[str, float] = {}
    for name, sub in module.named_modules():
        params = list(sub.parameters(recurse=False))
        if not params:
            continue
        total = 0.0
        for p in params:
            if p.grad is None:
                continue
            g = p.grad.detach()
            if g.is_sparse:
                g = g.coalesce().values()
            total += float(torch.linalg.vector_norm(g.float()).item()) ** 2
        norms[name or "<root>"] = math.sqrt(total)
    return norms


@dataclass
class GradientResult:
    """Per-layer gradient norms of one MLP trained with several activations.

    ``norms[activation][step]`` is a list of ``depth`` floats: the norm of each Linear layer's
    gradient (input layer first, output layer last). ``steps`` lists the recorded steps (0 is
    at initialisation, before any update). ``losses[activation]`` holds the training loss at
    each recorded step.
    """

    depth: int
    width: int
    seed: int
    steps: list[int]
    activations: list[str]
    init: str = "kaiming"
    norms: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    losses: dict[str, dict[int, float]] = field(default_factory=dict)

    def table(self, step: int | None = None) -> list[dict[str, Any]]:
        """One row per layer: ``{"layer": i, "<activation>": norm, ...}`` at ``step``.

        ``step`` defaults to 0 (initialisation).
        """
        step = self.steps[0] if step is None else step
        if step not in self.steps:
            raise ValueError(f"step {step} was not recorded; recorded steps are {self.steps}")
        return [
            {"layer": i, **{act: self.norms[act][step][i] for act in self.activations}}
            for i in range(self.depth)
        ]

    def ratio_first_last(self, activation: str, step: int | None = None) -> float:
        """First-layer norm divided by last-layer norm (small means vanishing)."""
        step = self.steps[0] if step is None else step
        layers = self.norms[activation][step]
        return layers[0] / layers[-1] if layers[-1] > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view (step keys become strings)."""
        return {
            "depth": self.depth, "width": self.width, "seed": self.seed, "steps": self.steps,
            "activations": self.activations, "init": self.init,
            "norms": {a: {str(s): v for s, v in per.items()} for a, per in self.norms.items()},
            "losses": {a: {str(s): v for s, v in per.items()} for a, per in self.losses.items()},
        }


def _make_activation(name: str) -> Any:
    import torch

    return {
        "sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU, "tanh": torch.nn.Tanh,
        "gelu": torch.nn.GELU, "leaky_relu": torch.nn.LeakyReLU,
    }[name]()


def _make_mlp(n_in: int, n_out: int, *, depth: int, width: int, activation: str,
              init: str) -> Any:
    """``depth`` Linear layers: in -> width, (depth - 2) x width -> width, width -> out."""
    import torch

    layers: list[Any] = []
    sizes = [n_in] + [width] * (depth - 1) + [n_out]
    for i in range(depth):
        linear = torch.nn.Linear(sizes[i], sizes[i + 1])
        if init == "kaiming":
            # He init keeps the forward and backward signal scale constant through ReLU layers;
            # every activation gets the same weights, so only the activation differs.
            torch.nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            torch.nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < depth - 1:
            layers.append(_make_activation(activation))
    return torch.nn.Sequential(*layers)


def vanishing_gradients(
    depth: int = 10,
    width: int = 64,
    activations: Sequence[str] = ("sigmoid", "relu"),
    seed: int = 0,
    *,
    steps: int = 50,
    record_every: int | None = None,
    lr: float = 0.05,
    batch_size: int = 256,
    init: str = "kaiming",
) -> GradientResult:
    """Train one deep MLP per activation on ``load_digits`` and record per-layer gradient norms.

    Every activation gets the same initial weights (the same ``seed`` before each build, and the
    Linear layers do not depend on the activation) and the same mini-batches, so the only
    difference is the activation. Norms are recorded at initialisation (step 0) and every
    ``record_every`` SGD steps (default: only at 0 and ``steps``).

    ``init`` is ``"kaiming"`` (He normal weights, zero biases: the usual init for ReLU nets, so
    the comparison is fair to ReLU) or ``"torch"`` (PyTorch's default ``Linear`` init, whose
    smaller weights make even a ReLU net's gradients shrink towards the input).

    Returns a :class:`GradientResult`; ``result.table()`` gives one row per layer.
    """
    torch = _require("torch", "train")
    from sklearn.datasets import load_digits

    depth = check_int(depth, "depth", minimum=2)
    width = check_int(width, "width", minimum=1)
    steps = check_int(steps, "steps", minimum=0)
    if isinstance(activations, str):
        activations = [activations]
    activations = [str(a).lower() for a in activations]
    if not activations:
        raise ValueError("activations is empty; give at least one, e.g. ('sigmoid', 'relu')")
    for act in activations:
        if act not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {act!r}; valid values are {', '.join(_ACTIVATIONS)}")
    if init not in ("kaiming", "torch"):
        raise ValueError(f"unknown init {init!r}; valid values are 'kaiming', 'torch'")
    every = steps if record_every is None else check_int(record_every, "record_every", minimum=1)
    recorded = sorted({0, *(range(every, steps + 1, every) if every > 0 else ()), steps})

    digits = load_digits()
    X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target, dtype=torch.long)
    n_classes = int(y.max()) + 1
    order_gen = torch.Generator().manual_seed(seed)
    batches = [torch.randint(0, len(X), (min(batch_size, len(X)),), generator=order_gen)
               for _ in range(max(steps, 1))]

    result = GradientResult(depth=depth, width=width, seed=seed, steps=recorded,
                            activations=list(activations), init=init)
    loss_fn = torch.nn.CrossEntropyLoss()
    # Matrices this small gain nothing from intra-op threads, and on a busy 2-core machine
    # the thread hand-offs made each backward ~200x slower (0.4 s against 2 ms) when measured.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for act in activations:
            _train_one(result, act, X, y, batches, n_classes=n_classes, lr=lr, loss_fn=loss_fn)
    finally:
        torch.set_num_threads(threads)
    return result


def _train_one(result: GradientResult, act: str, X: Any, y: Any, batches: list[Any], *,
               n_classes: int, lr: float, loss_fn: Any) -> None:
    import torch

    depth, width, seed, recorded = result.depth, result.width, result.seed, result.steps
    steps = recorded[-1]
    torch.manual_seed(seed)
    model = _make_mlp(X.shape[1], n_classes, depth=depth, width=width, activation=act,
                      init=result.init)
    optimiser = torch.optim.SGD(model.parameters(), lr=lr)
    linear_names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    result.norms[act] = {}
    result.losses[act] = {}
    for step in range(steps + 1):
        idx = batches[min(step, len(batches) - 1)]
        optimiser.zero_grad()
        loss = loss_fn(model(X[idx]), y[idx])
        loss.backward()
        if step in recorded:
            norms = layer_grad_norms(model)
            result.norms[act][step] = [norms[n] for n in linear_names]
            result.losses[act][step] = float(loss.item())
        if step < steps:
            optimiser.step()
    logger.debug("activation %s: first/last layer ratio at init %.3g", act,
                 result.ratio_first_last(act))


def plot_gradients(result: GradientResult, path: str | os.PathLike[str]) -> Path:
    """Write a PNG: per-layer gradient norm (log scale) against layer index, one line per activation.

    Solid lines are at initialisation, dashed lines at the last recorded step. Returns the path.
    """
    matplotlib = _require("matplotlib", "bench")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plot path must end in .png, got {str(path)!r}; e.g. 'grads.png'")
    path.parent.mkdir(parents=True, exist_ok=True)
    first, last = result.steps[0], result.steps[-1]
    layers = list(range(1, result.depth + 1))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, act in enumerate(result.activations):
        colour = f"C{i}"
        ax.plot(layers, _positive(result.norms[act][first]), marker="o", color=colour,
                label=f"{act}, step {first}")
        if last != first:
            ax.plot(layers, _positive(result.norms[act][last]), marker="x", linestyle="--",
                    color=colour, label=f"{act}, step {last}")
    ax.set_yscale("log")
    ax.set_xlabel("layer (1 = input side)")
    ax.set_ylabel("gradient L2 norm")
    ax.set_xticks(layers)
    ax.set_title(f"Per-layer gradient norms, {result.depth}-layer MLP (width {result.width}, "
                 f"seed {result.seed})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _positive(values: list[float]) -> list[float]:
    # A log axis cannot show 0: draw an exactly-zero gradient at the smallest float32 step.
    return [v if v > 0 else 1e-38 for v in values]
