"""``simtools diagnose``: training diagnostics (per-layer gradient norms)."""

from __future__ import annotations

import click

from .common import emit_json, friendly_errors

__all__ = ["diagnose_group"]


@click.group("diagnose")
def diagnose_group() -> None:
    """Training diagnostics.

    \b
    Example:
      simtools diagnose gradients --depth 10 --out grads.png
    """


@diagnose_group.command("gradients")
@click.option("--depth", default=10, show_default=True, type=click.IntRange(min=2),
              help="Linear layers in the MLP.")
@click.option("--width", default=64, show_default=True, type=click.IntRange(min=1),
              help="Units per hidden layer.")
@click.option("--activation", "activations", multiple=True, default=("sigmoid", "relu"),
              show_default=True,
              type=click.Choice(["sigmoid", "relu", "tanh", "gelu", "leaky_relu"]),
              help="Activation to compare (repeat the option for several).")
@click.option("--steps", default=50, show_default=True, type=click.IntRange(min=0),
              help="SGD steps after initialisation.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of weights and batches.")
@click.option("--init", "init", default="kaiming", show_default=True,
              type=click.Choice(["kaiming", "torch"]), help="Weight initialisation.")
@click.option("--out", "out", default=None, type=click.Path(dir_okay=False),
              help="Write a PNG plot here (log-scale norm against layer).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@friendly_errors
def gradients_command(depth: int, width: int, activations: tuple[str, ...], steps: int, seed: int,
                      init: str, out: str | None, as_json: bool) -> None:
    """Show how per-layer gradient norms vanish through sigmoids and not through ReLUs.

    Trains the same deep MLP (same seed, same weights, same batches of scikit-learn's digits)
    once per activation and prints each layer's gradient L2 norm at initialisation and after
    --steps SGD steps. Layer 1 is nearest the input.

    \b
    Example:
      simtools diagnose gradients --depth 10 --width 64 --out grads.png
    """
    from simtools.distill.diagnostics import plot_gradients, vanishing_gradients

    if out is not None and not out.lower().endswith(".png"):
        raise click.BadParameter(f"{out!r} is not a .png path; e.g. --out grads.png",
                                 param_hint="--out")
    result = vanishing_gradients(depth=depth, width=width, activations=activations, seed=seed,
                                 steps=steps, init=init)
    path = plot_gradients(result, out) if out else None
    if as_json:
        emit_json({**result.to_dict(), "plot": str(path) if path else None})
        return
    first, last = result.steps[0], result.steps[-1]
    header = ["layer"]
    for act in result.activations:
        header += [f"{act}@{first}"] + ([f"{act}@{last}"] if last != first else [])
    click.echo("  ".join(f"{h:>14}" for h in header))
    for i in range(result.depth):
        cells = [f"{i + 1:>14}"]
        for act in result.activations:
            cells.append(f"{result.norms[act][first][i]:>14.3e}")
            if last != first:
                cells.append(f"{result.norms[act][last][i]:>14.3e}")
        click.echo("  ".join(cells))
    ratios = ", ".join(f"{act} {result.ratio_first_last(act):.2e}" for act in result.activations)
    click.echo(f"first/last layer norm at step {first}: {ratios}")
    if path:
        click.echo(f"plot: {path}")
