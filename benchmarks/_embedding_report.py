"""The report of ``embedding_fidelity.py``: the targets table, the README's tables, the plot.

Everything here is built from the JSON payload the script writes, so the README's tables can
be re-rendered from ``benchmarks/results/embedding_fidelity.json`` (``benchmarks/report.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks._harness import markdown_table

STUDENT = "embedding student (bundled)"
PEER = "model2vec (distilled from the same MiniLM)"
CLASSIFIER = "classifier student (embedding-distilled on tweets)"
TEACHER = "teacher MiniLM-L6"
#: the issue's targets
TARGETS = {"lee_pearson_r": 0.62, "recall_at_10": 0.60, "mrr_ratio": 0.95, "speedup": 100.0,
           "size_mb": 30.0}


def targets(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per target: the student's figure, the peer's, the teacher's, the bound, met."""
    def find(rows: list[dict[str, Any]], name: str, key: str) -> float:
        return next(r[key] for r in rows if r["encoder"] == name)

    s, m, t = STUDENT, PEER, TEACHER
    lee = payload["lee"]
    recall = payload["recall_at_10"]
    wiki = payload["known_item"]
    speed = payload["speed"]
    rows = [
        ("Lee corpus Pearson r", find(lee, s, "pearson_r"), find(lee, m, "pearson_r"),
         find(lee, t, "pearson_r"), f">= {TARGETS['lee_pearson_r']}, and above the peer",
         find(lee, s, "pearson_r") >= TARGETS["lee_pearson_r"]
         and find(lee, s, "pearson_r") > find(lee, m, "pearson_r")),
        ("recall@10 against teacher k-NN (held-out tweets)", find(recall, s, "recall_at_10"),
         find(recall, m, "recall_at_10"), 1.0, f">= {TARGETS['recall_at_10']}",
         find(recall, s, "recall_at_10") >= TARGETS["recall_at_10"]),
        ("known-item MRR@10, Wikipedia fragment (test half)", find(wiki, s, "mrr_at_10"),
         find(wiki, m, "mrr_at_10"), find(wiki, t, "mrr_at_10"),
         f">= {TARGETS['mrr_ratio']:.0%} of the teacher's, and above the peer",
         find(wiki, s, "mrr_at_10") >= TARGETS["mrr_ratio"] * find(wiki, t, "mrr_at_10")
         and find(wiki, s, "mrr_at_10") > find(wiki, m, "mrr_at_10")),
        ("encoding speed, texts/s (x teacher)", speed["student"]["texts_per_s"],
         speed["model2vec"]["texts_per_s"], speed["teacher"]["texts_per_s"],
         f">= {TARGETS['speedup']:.0f}x the teacher, and >= the peer",
         speed["student"]["x_teacher"] >= TARGETS["speedup"]
         and speed["student"]["texts_per_s"] >= speed["model2vec"]["texts_per_s"]),
        ("size on disk, MB", payload["size_mb"]["student"], payload["size_mb"]["model2vec"],
         None, f"<= {TARGETS['size_mb']:.0f}", payload["size_mb"]["student"] <= TARGETS["size_mb"]),
    ]
    return [{"measure": r[0], "student": r[1], "model2vec": r[2], "teacher": r[3],
             "target": r[4], "met": bool(r[5])} for r in rows]


def _rounded(value: Any, digits: int = 3) -> Any:
    return round(value, digits) if isinstance(value, float) else value


def _target_cells(row: dict[str, Any], speed: dict[str, Any]) -> list[Any]:
    """The student's, the peer's and the teacher's cells of a target row; speeds as whole
    texts/s with the ratio to the teacher that the target reads."""
    names = ("student", "model2vec", "teacher")
    if not row["measure"].startswith("encoding speed"):
        return [_rounded(row[name]) for name in names]
    return [f"{row[name]:,.0f}" + (f" ({speed[name]['x_teacher']:.0f}x)" if name != "teacher"
                                   else "") for name in names]


def readme_tables(payload: dict[str, Any]) -> str:
    """The tables as the docs quote them: the targets, (a) recall@10, (b) Lee, (c) known-item
    search, (d) speed and size, (e) the index build; built from the JSON this script writes."""
    speed, build = payload["speed"], payload["index_build"]
    return "\n\n".join([
        markdown_table(["measure", "student", "model2vec", "teacher", "target", "met"],
                       [[r["measure"], *_target_cells(r, speed), r["target"],
                         "yes" if r["met"] else "no"] for r in payload["targets"]]),
        markdown_table(["encoder", "recall@10"],
                       [[r["encoder"], round(r["recall_at_10"], 3)]
                        for r in payload["recall_at_10"]]),
        markdown_table(["encoder", "Pearson r", "Spearman rho"],
                       [[r["encoder"], round(r["pearson_r"], 3), round(r["spearman_rho"], 3)]
                        for r in payload["lee"]]),
        markdown_table(["encoder", "MRR@10 heldout", "MRR@10 rare", "MRR@10 swapped",
                        "MRR@10 mean"],
                       [[r["encoder"], round(r["heldout"], 3), round(r["rare"], 3),
                         round(r["swapped"], 3), round(r["mrr_at_10"], 3)]
                        for r in payload["known_item"]]),
        markdown_table(["encoder", "texts/s", "x teacher", "dim", "size on disk (MB)"], [
            [name, round(speed[key]["texts_per_s"], 1), round(speed[key]["x_teacher"], 1),
             speed[key]["dim"], None if key == "teacher" else round(payload["size_mb"][key], 1)]
            for name, key in ((STUDENT, "student"), (PEER, "model2vec"),
                              ("teacher MiniLM-L6 (int8 ONNX, sample)", "teacher"))]),
        markdown_table(["encoder", "seconds", "texts/s", "dim", "vectors (MB)"], [
            ["embedding student", round(build["student_seconds"], 2),
             round(build["student_texts_per_s"], 1), build["student_dim"],
             build["index_mb"]["student"]],
            [f"teacher MiniLM ({build['teacher_sample']} texts timed, extrapolated)",
             round(build["teacher_seconds"], 2), round(build["teacher_texts_per_s"], 1), 384,
             build["index_mb"]["teacher"]]]),
    ])


def sweep_table(payload: dict[str, Any]) -> str:
    """The recipe sweep (``train_embedding_student.py sweep``): a row per change to the base."""
    rows = []
    for row in payload["rows"]:
        v = row["validation"]
        rows.append([f"`{json.dumps(row['change'])}`", row["epoch_kept"], v["val_recall_at_10"],
                     v["val_lee_background_agreement"], v["val_wiki_mrr_ratio"], v["val_mean"]])
    return markdown_table(["change", "epoch kept", "recall@10", "agreement", "MRR ratio",
                           "mean"], rows)


def plot(payload: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("recall_at_10", "recall_at_10", "recall@10 vs teacher k-NN (held-out tweets)"),
              ("lee", "pearson_r", "Pearson r with human ratings (Lee)"),
              ("known_item", "mrr_at_10", "known-item MRR@10 (Wikipedia, test half)")]
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
    for ax, (section, key, label) in zip(axes, panels, strict=True):
        rows = payload[section]
        names = [r["encoder"] for r in rows]
        colours = ["tab:green" if n == STUDENT else "tab:orange" if n == PEER else
                   "tab:red" if "MiniLM" in n else "tab:gray" for n in names]
        ax.barh(range(len(rows)), [r[key] for r in rows], color=colours)
        ax.set_yticks(range(len(rows)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(label, fontsize=10)
        for i, r in enumerate(rows):
            ax.text(r[key], i, f" {r[key]:.3f}", va="center", fontsize=8)
    fig.suptitle(title, fontsize=10)
    from benchmarks._tweeteval import save_figure

    save_figure(fig, path)

