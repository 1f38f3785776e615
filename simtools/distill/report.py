"""What a distillation sweep hands back: the winner, a row per setting, and a plot."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["best_result", "plot_sweep", "sweep_row", "sweep_rows"]


def best_result(results: Sequence[Any]) -> Any:
    """The sweep's winner: the highest validation macro-F1 (the first of equals)."""
    if not results:
        raise ValueError("the sweep trained no student")
    return max(results, key=lambda r: r.summary["val_macro_f1"])


def sweep_row(result: Any) -> dict[str, Any]:
    """One setting's line of the sweep table."""
    s = result.summary
    return {"methods": ",".join(s["methods"]), "temperature": s["temperature"], "alpha": s["alpha"],
            "val_macro_f1": s["val_macro_f1"], "val_accuracy": s["val_accuracy"],
            "val_knn_recall_at_10": s.get("val_knn_recall_at_10")}


def sweep_rows(results: Sequence[Any]) -> list[dict[str, Any]]:
    return [sweep_row(r) for r in results]


def plot_sweep(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Validation macro-F1 against the swept temperature or alpha (bars for methods alone);
    needs matplotlib (``simtools[bench]``)."""
    temps = sorted({r["temperature"] for r in rows})
    alphas = sorted({r["alpha"] for r in rows})
    path = Path(path)
    _draw(rows, temps, alphas, path)
    return path


def _draw(rows: list[dict[str, Any]], temps: list[float], alphas: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    if len(temps) > 1 or len(alphas) > 1:
        key, other = ("temperature", "alpha") if len(temps) > 1 else ("alpha", "temperature")
        groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault((row["methods"], row[other]), []).append(row)
        for (methods, value), members in groups.items():
            ax.plot([r[key] for r in members], [r["val_macro_f1"] for r in members], marker="o",
                    label=f"{methods}, {other} {value:g}")
        if key == "temperature":
            ax.set_xscale("log")
            ax.set_xticks(temps, [f"{t:g}" for t in temps])
        ax.set_xlabel(key)
        ax.legend(fontsize=8)
    else:
        ax.bar(range(len(rows)), [r["val_macro_f1"] for r in rows])
        ax.set_xticks(range(len(rows)), [r["methods"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("validation macro-F1")
    ax.set_title("simtools distill sweep")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
