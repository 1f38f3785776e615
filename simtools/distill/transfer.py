"""The transfer set: the texts a student learns from, labelled by the teacher.

:func:`prepare` fits the teacher on the training split (unless it is given one, fitted), builds
the transfer set (the real texts; with ``compression`` also perturbed copies; unlabelled texts
for every method that learns from the teacher) and labels it with the teacher's logits and,
for ``embedding``, the teacher's sentence vectors. A sweep pays for this once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..evaluation import score_predictions
from .augment import perturbed_copies
from .config import DistillConfig, Method

__all__ = ["Prepared", "prepare"]

logger = logging.getLogger("simtools.distill.trainer")


@dataclass
class Prepared:
    """A teacher-labelled transfer set and the validation split, shared by a sweep."""

    labels: list[str]
    texts: list[str]
    y: np.ndarray                      # int64 (n,), -1 for unlabelled texts
    synthetic: np.ndarray              # bool (n,): perturbed copies and unlabelled texts
    perturbed: np.ndarray              # bool (n,): perturbed copies only (compression)
    val_texts: list[str]
    val_y: np.ndarray
    teacher_logits: np.ndarray | None = None   # float32 (n, C)
    teacher_emb: np.ndarray | None = None      # float32 (n, D), L2-normalised
    val_teacher_emb: np.ndarray | None = None
    teacher_summary: dict[str, Any] = field(default_factory=dict)


def _label_ids(labels: Sequence[str], names: list[str], split: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise ValueError(f"the {split} split has labels {unknown} that the training labels "
                         f"{names} lack; fix the data or drop those rows")
    return np.fromiter((index[lab] for lab in labels), dtype=np.int64, count=len(labels))


def _needs(configs: Sequence[DistillConfig]) -> tuple[bool, bool, bool]:
    teacher = any(m is not Method.NONE for c in configs for m in c.methods)
    compression = any(c.uses(Method.COMPRESSION) for c in configs)
    embedding = any(c.uses(Method.EMBEDDING) for c in configs)
    return teacher, compression, embedding


def prepare(data: Any, configs: DistillConfig | Sequence[DistillConfig], *,
            teacher: Any = None, unlabelled: Sequence[str] | None = None) -> Prepared:
    """Fit the teacher (unless one is given, already fitted) and build the transfer set.

    ``data`` is a :class:`simtools.data.LabelledData`; ``configs`` the students to come (the
    transfer set holds what any of them needs); ``unlabelled`` optional in-domain texts that,
    labelled by the teacher, join the transfer set of every student that learns from the
    teacher (all methods but ``none``): Hinton et al.'s transfer set need not be labelled, and
    Bucilua et al. grew theirs with unlabelled data.
    """
    configs = [configs] if isinstance(configs, DistillConfig) else list(configs)
    first = configs[0]
    labels = list(data.labels)
    y_train = _label_ids(data.train.labels, labels, "train")
    val_y = _label_ids(data.val.labels, labels, "validation")
    texts = list(data.train.texts)
    need_teacher, need_compression, need_embedding = _needs(configs)
    copies: list[str] = []
    source = np.zeros(0, dtype=np.int64)
    if need_compression:
        n_copies = max(c.augment_copies for c in configs if c.uses(Method.COMPRESSION))
        copies, source = perturbed_copies(texts, n_copies, seed=first.seed)
    extra_unl = [t for t in (unlabelled or []) if t.strip()] if need_teacher else []
    if unlabelled and not need_teacher:
        logger.info("unlabelled texts ignored: method 'none' trains on the labels alone")
    texts = texts + copies + extra_unl
    y = np.concatenate([y_train, y_train[source], np.full(len(extra_unl), -1, dtype=np.int64)])
    kinds = np.repeat([0, 1, 2], [len(data.train), len(copies), len(extra_unl)])
    if copies or extra_unl:
        logger.info("transfer set: %d real + %d perturbed + %d unlabelled texts",
                    len(data.train), len(copies), len(extra_unl))
    prepared = Prepared(labels, texts, y, kinds > 0, kinds == 1, list(data.val.texts), val_y)
    if not need_teacher:
        return prepared
    started = time.perf_counter()
    if teacher is None:
        from .teacher import make_teacher

        teacher = make_teacher(first.teacher, seed=first.seed)
        logger.info("fitting teacher %r on %d texts", first.teacher, len(data.train))
        teacher.fit(list(data.train.texts), list(data.train.labels))
    missing = sorted(set(labels) - set(teacher.labels))
    if missing:
        raise ValueError(f"the teacher does not know the labels {missing}; fit it on this data")
    columns = [list(teacher.labels).index(name) for name in labels]
    prepared.teacher_logits = np.ascontiguousarray(
        np.asarray(teacher.predict_logits(texts), dtype=np.float32)[:, columns])
    val_logits = np.asarray(teacher.predict_logits(prepared.val_texts), dtype=np.float32)[:, columns]
    teacher_scores = score_predictions(val_y, val_logits.argmax(axis=1), len(labels))
    summary: dict[str, Any] = {"spec": first.teacher, "val_accuracy": teacher_scores["accuracy"],
                               "val_macro_f1": teacher_scores["macro_f1"]}
    try:
        summary["members_val_macro_f1"] = dict(
            teacher.member_scores(prepared.val_texts, list(data.val.labels)))
    except (AttributeError, NotImplementedError, ValueError) as e:
        logger.info("teacher member scores unavailable: %s", e)
    if need_embedding:
        prepared.teacher_emb = np.asarray(teacher.embed(texts), dtype=np.float32)
        prepared.val_teacher_emb = np.asarray(teacher.embed(prepared.val_texts), dtype=np.float32)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    prepared.teacher_summary = summary
    logger.info("teacher: val macro-F1 %.4f, accuracy %.4f (%.1f s)", summary["val_macro_f1"],
                summary["val_accuracy"], summary["seconds"])
    return prepared
