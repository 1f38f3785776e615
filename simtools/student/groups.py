"""One student per group of texts: TweetEval's stance task, one model per target.

A stance depends on its target ("God is great" is against atheism, not against abortion), and
a hashed bag of n-grams cannot learn that interaction from a shared model. A
:class:`GroupedStudents` holds one :class:`~simtools.student.StudentClassifier` per group, all
with the same labels, and routes each text to its group's student.

Saved as one model folder: ``config.json`` (type ``students-by-group``, the labels and the group
names) and ``groups/NAME/`` holding each student's files, as a student folder holds them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._math import softmax
from ..errors import FormatError, InputError
from ..folders import open_folder, save_folder
from ..persistence import member, read_config, read_json, write_json
from .model import StudentClassifier

__all__ = ["GroupedStudents", "load_model"]

FORMAT_VERSION = 1
TYPE = "students-by-group"
#: A group name is a folder name: letters, digits, '.', '_' and '-', not starting with '.'.
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


class GroupedStudents:
    """Students by group, sharing one label list; ``group_name`` says what a group is."""

    def __init__(self, students: Mapping[str, StudentClassifier], *, group_name: str = "target",
                 config: dict[str, Any] | None = None) -> None:
        if not students:
            raise InputError("students must hold at least one group's student")
        for name in students:
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise InputError(f"group name {name!r} must be letters, digits, '.', '_' or '-' "
                                 "(it names a folder)")
        labels = next(iter(students.values())).labels
        for name, student in students.items():
            if student.labels != labels:
                raise InputError(f"the student of group {name!r} has labels {student.labels}, "
                                 f"the others {labels}; every group needs the same labels")
        self.students = dict(sorted(students.items()))
        self.labels = list(labels)
        self.group_name = group_name
        self.config = dict(config or {})

    @property
    def groups(self) -> list[str]:
        return list(self.students)

    def student(self, group: str) -> StudentClassifier:
        """The student of ``group``."""
        if group not in self.students:
            raise InputError(f"this model has no {self.group_name} {group!r}; its "
                             f"{self.group_name}s are {', '.join(self.groups)}")
        return self.students[group]

    def _rows(self, texts: Sequence[str], groups: Sequence[str] | str) -> dict[str, np.ndarray]:
        """Row indices of each group among ``texts``."""
        if isinstance(groups, str):
            self.student(groups)
            return {groups: np.arange(len(texts))}
        if len(groups) != len(texts):
            raise InputError(f"{len(texts)} texts but {len(groups)} groups; give one "
                             f"{self.group_name} per text, or one for all")
        names = np.asarray(list(groups), dtype=object)
        rows = {}
        for name in dict.fromkeys(names.tolist()):
            self.student(name)
            rows[name] = np.flatnonzero(names == name)
        return rows

    def predict_logits(self, texts: Sequence[str], groups: Sequence[str] | str, *,
                       strict: bool = True, check_scripts: bool = False) -> np.ndarray:
        """Logits float32 ``(n, classes)``; each text by its group's student (``groups``: one
        name per text, or one name for all)."""
        texts = list(texts)
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for name, rows in self._rows(texts, groups).items():
            out[rows] = self.students[name].predict_logits(
                [texts[i] for i in rows], strict=strict, check_scripts=check_scripts)
        return out

    def predict_proba_known(self, texts: Sequence[str], groups: Sequence[str] | str, *,
                            check_scripts: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, known)`` as :meth:`StudentClassifier.predict_proba_known`."""
        texts = list(texts)
        proba = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        known = np.zeros(len(texts), dtype=bool)
        for name, rows in self._rows(texts, groups).items():
            proba[rows], known[rows] = self.students[name].predict_proba_known(
                [texts[i] for i in rows], check_scripts=check_scripts)
        return proba, known

    def predict_proba(self, texts: Sequence[str], groups: Sequence[str] | str) -> np.ndarray:
        return softmax(self.predict_logits(texts, groups))

    def predict(self, texts: Sequence[str], groups: Sequence[str] | str) -> list[str]:
        best = self.predict_logits(texts, groups).argmax(axis=1)
        return [self.labels[i] for i in best]

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the model folder as a new version (``force``: see
        :func:`simtools.folders.check_output`)."""
        with save_folder(path, kind="model", force=force) as tmp:
            for name, student in self.students.items():
                folder = tmp / "groups" / name
                folder.mkdir(parents=True)
                student.save_into(folder)
            write_json(tmp / "config.json", {
                **self.config, "kind": "model", "type": TYPE, "format_version": FORMAT_VERSION,
                "labels": self.labels, "group_name": self.group_name, "groups": self.groups})
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GroupedStudents:
        with open_folder(path, kind="model") as folder:
            return cls._load_files(folder)

    @classmethod
    def _load_files(cls, path: Path) -> GroupedStudents:
        config = read_config(path, kind="model", versions=(FORMAT_VERSION,))
        if config.get("type") != TYPE:
            raise FormatError(f"{path} holds a model of type {config.get('type')!r}, "
                              f"expected {TYPE!r}")
        names = config.get("groups")
        if not isinstance(names, list) or not names or not all(
                isinstance(n, str) and _NAME.fullmatch(n) for n in names):
            raise FormatError(f"{path}/config.json: 'groups' must be a list of folder names")
        students = {}
        for name in names:
            folder = path / "groups" / name
            if not folder.is_dir() or folder.is_symlink():
                raise FormatError(f"{path} lacks the student of group {name!r} (groups/{name})")
            students[name] = StudentClassifier._load_files(folder)
        try:
            return cls(students, group_name=str(config.get("group_name", "target")),
                       config=config)
        except InputError as e:
            raise FormatError(f"{path}: {e}") from e


def load_model(path: str | os.PathLike[str] | None = None) -> StudentClassifier | GroupedStudents:
    """A model folder of either kind: one student, or one per group (default: the bundled
    BBC News model)."""
    if path is None:
        return StudentClassifier.load()
    with open_folder(path, kind="model") as folder:
        config = read_json(member(folder, "config.json"))
        if isinstance(config, dict) and config.get("type") == TYPE:
            return GroupedStudents._load_files(folder)
        return StudentClassifier._load_files(folder)
