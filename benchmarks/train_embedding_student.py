"""Train the bundled embedding student (``simtools/models/minilm-static``) from data at hand.

Four stages; each reuses what the one before left in the caches, so a rerun is cheap:

1. ``teacher``: the teacher's (all-MiniLM-L6-v2, int8 ONNX) sentence embeddings of the transfer
   set and of the held-apart validation texts, into the shared teacher cache
   (``~/.cache/simtools/teacher``); ``--part 3/8`` does the third of eight slices, so a long
   run can be cut into pieces;
2. ``tokens``: the teacher run on each of its 30,522 vocabulary tokens alone (the static
   vectors' starting point), saved under ``--work``;
3. ``sweep``: recipes scored on the held-apart validation texts (static vectors alone, then
   fine-tuned), into ``benchmarks/results/embedding_student_sweep.json``;
4. ``train``: static vectors (projection, SIF weights) fine-tuned on the teacher's sentence
   embeddings by the chosen recipe, written as a model folder to ``--out``.

The transfer set and the held-apart texts are described in ``benchmarks/_embedding_data.py``.
Reproduce the bundled model (about 20 minutes on 2 cores, half of it the teacher)::

    python benchmarks/train_embedding_student.py teacher
    python benchmarks/train_embedding_student.py tokens
    python benchmarks/train_embedding_student.py sweep     # optional: the recipe's choices
    python benchmarks/train_embedding_student.py train --out simtools/models/minilm-static --flat
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._embedding_data import teacher_vectors, transfer_set  # noqa: E402

logger = logging.getLogger("train_embedding_student")
WORK = Path.home() / ".cache" / "simtools" / "embedding-student"


def stage_teacher(args: argparse.Namespace) -> None:
    data = transfer_set()
    texts = data.texts + [t for v in data.validation.values() for t in v]
    part, parts = (int(x) for x in args.part.split("/"))
    order = np.random.default_rng(0).permutation(len(texts))  # slices of similar cost
    chosen = [texts[i] for i in np.array_split(order, parts)[part - 1]]
    logger.info("transfer set %s; validation %s; this part: %d texts", data.counts(),
                {k: len(v) for k, v in data.validation.items()}, len(chosen))
    teacher_vectors(chosen)


def stage_tokens(args: argparse.Namespace) -> None:
    from simtools.distill.static_vectors import teacher_token_vectors, teacher_vocab

    vocab = teacher_vocab()
    started = time.perf_counter()
    out = teacher_token_vectors(
        len(vocab), progress=lambda done, total: logger.info(
            "tokens %d/%d, %.0f s", done, total, time.perf_counter() - started))
    args.work.mkdir(parents=True, exist_ok=True)
    for name, array in out.items():
        np.save(args.work / f"tokens_{name}.npy", array)
    logger.info("wrote %s", ", ".join(f"tokens_{n}.npy" for n in out))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("stage", choices=["teacher", "tokens", "sweep", "train"])
    p.add_argument("--work", type=Path, default=WORK, help="folder of intermediate files")
    p.add_argument("--part", default="1/1", help="teacher stage: slice I of N (e.g. 3/8)")
    p.add_argument("--out", type=Path, default=None, help="train stage: the model folder")
    p.add_argument("--force", action="store_true", help="replace the model folder at --out")
    p.add_argument("--flat", action="store_true",
                   help="train stage: write the files straight into --out, unversioned (the "
                   "form of the bundled models, shipped as package data)")
    p.add_argument("--recipe", type=Path, default=None,
                   help="train stage: a JSON file of changes to the recipe (default: none); "
                   "sweep stage: a JSON list of such changes")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stages: dict[str, Any] = {"teacher": stage_teacher, "tokens": stage_tokens}
    change = json.loads(args.recipe.read_text()) if args.recipe else None
    if args.stage == "train":
        from benchmarks._embedding_train import stage_train

        stage_train(args, change)
    elif args.stage == "sweep":
        from benchmarks._embedding_train import SWEEP, stage_sweep

        stage_sweep(args, change or SWEEP)
    else:
        stages[args.stage](args)


if __name__ == "__main__":
    main()
