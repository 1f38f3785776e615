"""The parent side of the speed runs and the peer of ``embedding_fidelity.py``.

Each encoder is timed in a process of its own (``_embedding_speed.py``) so that thread pools
do not contend; the model2vec peer is distilled in a child process too.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._tweeteval import TASKS, load_task

SPEED_SCRIPT = Path(__file__).resolve().parent / "_embedding_speed.py"


def _child(args: list[str]) -> dict[str, Any]:
    """Run ``_embedding_speed.py`` with ``args`` in a fresh process; its one JSON line."""
    import json
    import subprocess

    done = subprocess.run([sys.executable, str(SPEED_SCRIPT), *args], capture_output=True,
                          text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{SPEED_SCRIPT.name} {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def folder_mb(path: Path) -> float:
    """Size on disk of a model folder's files (its current version's, for a versioned one)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6


def model2vec_peer(out: Path) -> tuple[Any, dict[str, Any]]:
    """model2vec distilled (in a child process) from the packaged MiniLM; loaded here."""
    from model2vec import StaticModel

    info = _child(["distill-model2vec", str(out)])
    return StaticModel.from_pretrained(str(out)), info



def speeds(texts: list[str], student_dir: Path, m2v_dir: Path, teacher_sample: int,
           repeat: int, seed: int, folder: Path) -> dict[str, Any]:
    """texts/s of each encoder on ``texts``, each in its own process."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    rng = np.random.default_rng(seed)
    sample = [texts[i] for i in rng.choice(len(texts), teacher_sample, replace=False)]
    (folder / "sample.json").write_text(json.dumps(sample), encoding="utf-8")
    out = {"student": _child(["student", str(folder / "texts.json"), "--model", str(student_dir),
                              "--repeat", str(repeat)]),
           "model2vec": _child(["model2vec", str(folder / "texts.json"), "--model",
                                str(m2v_dir), "--repeat", str(repeat)]),
           "teacher": _child(["teacher", str(folder / "sample.json"), "--repeat", "1"])}
    teacher = out["teacher"]["texts_per_s"]
    for row in out.values():
        row["x_teacher"] = row["texts_per_s"] / teacher
    return out


def index_texts(n: int, seed: int) -> tuple[list[str], int]:
    """All TweetEval tweets (train and validation, every task), topped up to ``n`` with
    perturbed copies; returns the texts and how many are real."""
    from simtools.distill.augment import perturbed_copies

    texts: list[str] = []
    for name in TASKS:
        task = load_task(name)
        texts += task.train_texts + task.val_texts
    real = min(len(texts), n)
    texts = texts[:n]
    if len(texts) < n:
        extra, _ = perturbed_copies(texts, -(-(n - len(texts)) // len(texts)), seed=seed)
        texts += extra[: n - len(texts)]
    return texts, real


def index_speed(student: Any, texts: list[str], teacher_sample: int, repeat: int,
                seed: int) -> dict[str, Any]:
    """Building a cosine index of ``texts`` with ``student`` (anything with ``embed`` and
    ``embedding_dim``) against the teacher (timed on a sample, extrapolated)."""
    from benchmarks._harness import time_repeat
    from simtools import Index
    from simtools.encoders.teacher import SentenceEncoder
    from simtools.student.featurizer import HashingFeaturizer

    # grow the featurizer's shared hash-power table once, single-threaded (its growth races
    # when several threads trigger it at once); the script check of the embedding student
    # uses it too
    HashingFeaturizer().transform(texts)
    student.embed(texts[:2000])

    def build_student() -> Index:
        # as `simtools index` does: a text the model cannot place (emoji only) is left out
        vectors, known = student.embed_known(texts)
        index = Index(None, metric="cosine")
        index.add_vectors(vectors[known])
        return index

    # one timed pass (the featurizer is warm): on a loaded 2-core machine a pass takes minutes
    student_t = time_repeat(build_student, repeat=1, warmup=0)
    # the teacher: embed a sample of never-seen texts with no cache, then extrapolate
    rng = np.random.default_rng(seed)
    sample = [f"{texts[i]} ~{j}" for j, i in enumerate(rng.choice(len(texts), teacher_sample,
                                                                  replace=False))]
    encoder = SentenceEncoder("minilm")
    encoder.embed(sample[:16])  # load the model and the tokenizer: not part of the rate
    start = time.perf_counter()
    encoder.embed(sample)
    teacher_embed_s = (time.perf_counter() - start) * len(texts) / len(sample)
    vectors = rng.standard_normal((len(texts), 384), dtype=np.float32)

    def add_teacher() -> None:
        Index(None, metric="cosine").add_vectors(vectors)

    add_t = time_repeat(add_teacher, repeat=repeat, warmup=1)
    teacher_total = teacher_embed_s + add_t["median_s"]
    return {"n_texts": len(texts), "student_placed": int(student.embed_known(texts)[1].sum()),
            "student_seconds": student_t["median_s"],
            "student_texts_per_s": len(texts) / student_t["median_s"],
            "student_dim": int(student.embedding_dim),
            "teacher_sample": teacher_sample,
            "teacher_embed_seconds_extrapolated": teacher_embed_s,
            "teacher_add_seconds_measured": add_t["median_s"],
            "teacher_seconds": teacher_total,
            "teacher_texts_per_s": len(texts) / teacher_total,
            "speedup": teacher_total / student_t["median_s"],
            "index_mb": {"student": len(texts) * int(student.embedding_dim) * 4 / 1e6,
                         "teacher": len(texts) * 384 * 4 / 1e6}}

