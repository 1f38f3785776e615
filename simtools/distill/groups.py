"""Distillation per group: one student per target of a stance task, scored pooled.

A data set whose texts carry groups (:attr:`simtools.data.LabelledData.groups`, a folder of
TweetEval folders) trains every setting once per group, on that group's texts alone, and
keeps the settings whole: setting ``i`` of the sweep is the :class:`GroupedStudents` of every
group's student ``i``, scored on the pooled validation texts, each by its own group's student.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..evaluation import evaluate_classifier
from ..student.groups import GroupedStudents
from .config import DistillConfig
from .trainer import ProgressFn, sweep

__all__ = ["GroupedResult", "sweep_by_group"]


@dataclass
class GroupedResult:
    """One setting trained per group: the students and the pooled validation scores."""

    student: GroupedStudents
    config: DistillConfig
    summary: dict[str, Any]


def sweep_by_group(data: Any, base: DistillConfig, *, methods: Sequence[Any] | None = None,
                   temperatures: Sequence[float] | None = None,
                   alphas: Sequence[float] | None = None,
                   unlabelled: Sequence[str] | None = None,
                   progress: ProgressFn | None = None) -> list[GroupedResult]:
    """:func:`~simtools.distill.trainer.sweep` once per group of ``data``; results in setting
    order, each scored on the whole validation split (``summary["groups"]``: each group's own
    summary)."""
    names = data.groups
    if not names:
        raise InputError(f"{data.source} has no groups (one folder per target, as TweetEval's "
                         "stance task has); train one student on it instead")
    per_group = {name: sweep(data.group(name), base, methods=methods, temperatures=temperatures,
                             alphas=alphas, unlabelled=unlabelled, progress=progress)
                 for name in names}
    results = []
    for i, first in enumerate(per_group[names[0]]):
        model = GroupedStudents({name: per_group[name][i].student for name in names},
                                config={"training": first.student.config.get("training")})
        scores = evaluate_classifier(model, data.val.texts, data.val.labels,
                                     groups=data.val.groups)
        summary = {"methods": first.summary["methods"],
                   "temperature": first.summary["temperature"], "alpha": first.summary["alpha"],
                   "val_macro_f1": scores["macro_f1"], "val_accuracy": scores["accuracy"],
                   "groups": {name: per_group[name][i].summary for name in names}}
        results.append(GroupedResult(model, first.config, summary))
    return results
