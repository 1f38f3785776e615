"""The table, the summary and the plot of a result."""

from __future__ import annotations

from pathlib import Path

from .config import PAPER


def _fmt_gap(gap: float | None) -> str:
    # One decimal: 69.7% must not print as a 70% that meets the target.
    return "n/a" if gap is None else f"{100 * gap:.1f}%"


def format_table(result: dict) -> str:
    """A Markdown table of every row, with the paper's MNIST anchors beside ours."""
    anchors = PAPER["mnist_test_errors"]
    paper_for = {"teacher": str(anchors["teacher"]), "small": str(anchors["small"])}
    seeds = result.get("seeds")
    on = result["config"].get("evaluated_on", "test")
    errors = f"mean {on} errors over {len(seeds)} seeds" if seeds else f"{on} errors"
    lines = [
        f"| model | {errors} (of {result['n_test']:,}) | {on} error % | gap recovered "
        "| paper (MNIST errors of 10,000) | wall s |"
        + (f" seeds {', '.join(map(str, seeds))} |" if seeds else ""),
        "| --- | ---: | ---: | ---: | --- | ---: |" + (" --- |" if seeds else ""),
    ]
    for row in result["rows"]:
        paper = paper_for.get(row["kind"], "")
        if row["kind"] == "distilled" and row["temperature"] == 20:
            paper = f"{anchors['distilled_T20']} (T=20, {_fmt_gap(PAPER['mnist_gap_recovered'])})"
        gap = _fmt_gap(row["gap_recovered"]) if "gap_recovered" in row else ""
        per_seed = " / ".join(map(str, row.get("test_errors_per_seed", [])))
        lines.append(
            f"| {row['name']} | {row['test_errors']} | {row['test_error_pct']:.2f} | {gap} "
            f"| {paper} | {row['wall_s']:.1f} |" + (f" {per_seed} |" if seeds else "")
        )
    return "\n".join(lines)


def _where(result: dict) -> str:
    """The device and threads the runs ran on; one part per place when the seeds differ."""
    seeds_at: dict[str, list[int]] = {}
    for run_ in result.get("runs", [result]):
        env = run_["environment"]
        place = f"{env.get('device', 'cpu')}, {env['threads']} CPU thread(s)"
        seeds_at.setdefault(place, []).append(run_["config"]["seed"])
    if len(seeds_at) == 1:
        return next(iter(seeds_at))
    return "; ".join(
        f"{place} (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})"
        for place, seeds in seeds_at.items()
    )


def format_summary(result: dict) -> str:
    s = result["summary"]
    speech = PAPER["speech_3pct_frame_accuracy"]
    frac = 100 * result["config"]["small_data_fraction"]
    seeds = result.get("seeds")
    over = f" (mean of seeds {', '.join(map(str, seeds))})" if seeds else ""
    per_seed = ""
    if seeds:
        gaps = ", ".join(_fmt_gap(g) for g in s["best_gap_recovered_per_seed"])
        per_seed = f"\nGap recovered at T={s['best_temperature']:g}, seed by seed: {gaps}."
    return "\n".join(
        [
            f"Best temperature T={s['best_temperature']:g}: {s['best_distilled_errors']} errors"
            f"{over}; gap recovered {_fmt_gap(s['best_gap_recovered'])} "
            f"(paper, MNIST: {_fmt_gap(PAPER['mnist_gap_recovered'])}; target: at least 70%)."
            + per_seed,
            f"{frac:g}% of the training data: hard labels {s['little_data_hard_errors']} errors, "
            f"soft targets {s['little_data_soft_errors']} errors "
            f"(paper, speech, frame accuracy: hard {100 * speech['hard_labels']:.1f}%, "
            f"soft {100 * speech['soft_targets']:.1f}%).",
            f"Total wall time {result['wall_s_total']:.0f} s on {_where(result)}."
            + _cached_note(result),
        ]
    )


def _cached_note(result: dict) -> str:
    cached = [
        run_["config"]["seed"]
        for run_ in result.get("runs", [result])
        if run_.get("teacher_logits_from")
    ]
    if not cached:
        return ""
    return (
        f" Teacher logits of seed(s) {', '.join(map(str, cached))} came from --teacher-cache: "
        "the total leaves out their training, which the teacher rows' wall times give."
    )


def _t_label(row: dict) -> str:
    """The row's temperature, or every seed's when they differ: "8" or "8 / 4"."""
    temps = row.get("temperature_per_seed") or [row["temperature"]]
    return " / ".join(f"{t:g}" for t in temps)


def save_plot(result: dict, path: Path) -> None:
    """Test error % against temperature, with the teacher and small net as lines; and 3% data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    by_kind = {r["kind"]: r for r in rows}
    distilled = [r for r in rows if r["kind"] == "distilled"]
    fig, (ax, ax_little) = plt.subplots(
        1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2.2, 1]}
    )
    temps = [r["temperature"] for r in distilled]
    ax.plot(
        temps,
        [r["test_error_pct"] for r in distilled],
        "o-",
        color="C2",
        label=f"distilled small net (alpha={result['config']['alpha']:g})",
    )
    for r in distilled:  # each seed's own count, faint, so the spread shows beside the mean
        per_seed = [100 * e / result["n_test"] for e in r.get("test_errors_per_seed", [])]
        ax.plot([r["temperature"]] * len(per_seed), per_seed, ".", color="C2", alpha=0.35)
    for r in rows:
        if r["kind"] == "alpha_sweep" and r["temperature"] is None:
            # Seeds that ran the sweep at different best temperatures: a level, not a point.
            ax.axhline(
                r["test_error_pct"],
                color="C4",
                ls=":",
                label=f"alpha={r['alpha']:g} at each seed's best T ({_t_label(r)})",
            )
        elif r["kind"] == "alpha_sweep":
            ax.plot(r["temperature"], r["test_error_pct"], "s", color="C4")
            ax.annotate(
                f"alpha={r['alpha']:g}",
                (r["temperature"], r["test_error_pct"]),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
                color="C4",
            )
    ax.axhline(
        by_kind["teacher"]["test_error_pct"], color="C0", ls="--", label=by_kind["teacher"]["name"]
    )
    ax.axhline(
        by_kind["small"]["test_error_pct"], color="C3", ls="--", label="small net, hard labels"
    )
    ax.set_xscale("log")
    ax.set_xticks(temps)
    ax.set_xticklabels([f"{t:g}" for t in temps])
    ax.set_xlabel("temperature T")
    on = result["config"].get("evaluated_on", "test")
    ax.set_ylabel(f"{on} error % (of {result['n_test']:,})")
    seeds = result.get("seeds")
    over = f", mean of {len(seeds)} seeds" if seeds else ""
    ax.set_title(f"Soft targets on {result['config']['dataset']}{over}")
    ax.legend(fontsize=8)
    hard, soft = by_kind["little_data_hard"], by_kind["little_data_soft"]
    bars = ax_little.bar(
        ["hard labels", f"soft T={_t_label(soft)}"],
        [hard["test_error_pct"], soft["test_error_pct"]],
        color=["C3", "C2"],
    )
    ax_little.bar_label(bars, fmt="%.2f%%", fontsize=8)
    ax_little.set_title(
        f"small net on {100 * result['config']['small_data_fraction']:g}% of the training data"
    )
    ax_little.set_ylabel(f"{on} error %")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
