"""The records the readers return: splits of labelled texts, data sets, documents."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["Document", "LabelledData", "Split"]


@dataclass
class Split:
    """Parallel lists of texts and their label names, and of their groups where the data has
    them (the target of each tweet of TweetEval's stance task: "abortion", "atheism", ...)."""

    texts: list[str]
    labels: list[str]
    groups: list[str] | None = None

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise InputError(f"{len(self.texts)} texts but {len(self.labels)} labels; they must pair up")
        if self.groups is not None and len(self.groups) != len(self.texts):
            raise InputError(f"{len(self.texts)} texts but {len(self.groups)} groups; they must pair up")

    def take(self, rows: Sequence[int] | np.ndarray) -> Split:
        """The rows ``rows`` (indices), in that order."""
        rows = [int(i) for i in rows]
        groups = None if self.groups is None else [self.groups[i] for i in rows]
        return Split([self.texts[i] for i in rows], [self.labels[i] for i in rows], groups)

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class LabelledData:
    """A labelled data set: ``train``, ``val`` and, when the source has one, ``test``."""

    train: Split
    val: Split
    test: Split | None = None
    #: Label names in canonical order (a TweetEval ``mapping.txt`` order, else sorted).
    labels: list[str] = field(default_factory=list)
    source: str = ""

    def split(self, name: str) -> Split:
        """The split called ``name``: "train", "val", "test", or "all" (every text of the
        source: train, then val, then test, so a labelled file is scored row by row)."""
        if name == "all":
            every = concat([self.train, self.val, self.test])
            assert every is not None  # train is always there
            return every
        if name not in ("train", "val", "test"):
            raise InputError(f"unknown split {name!r}; valid values are 'train', 'val', 'test', 'all'")
        found = getattr(self, name)
        if found is None:
            raise InputError(f"{self.source} has no {name} split (a table or class folders are "
                             "split into train and val only); use split='all' to take every text")
        return found

    @property
    def groups(self) -> list[str] | None:
        """The groups of the data, sorted (the stance task's targets), or None."""
        return None if self.train.groups is None else sorted(set(self.train.groups))

    def group(self, name: str) -> LabelledData:
        """The texts of one group: every split restricted to it, the same label list."""
        if self.groups is None or name not in self.groups:
            raise InputError(f"{self.source} has no group {name!r}; its groups are "
                             f"{', '.join(self.groups or []) or 'none'}")

        def part(split: Split | None) -> Split | None:
            if split is None or split.groups is None:
                return split
            return split.take([i for i, g in enumerate(split.groups) if g == name])

        train, val = part(self.train), part(self.val)
        assert train is not None and val is not None
        return LabelledData(train, val, part(self.test), list(self.labels),
                            f"{self.source} ({name})")


@dataclass
class Document:
    """One document to index."""

    text: str
    title: str
    label: str | None = None
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The line of ``source`` it starts on, for a row of a table (for messages, not stored).
    line: int | None = None
    #: Its id in the index (a Wikipedia page id, say); None: numbered as it is added.
    id: str | None = None


def concat(splits: list[Split | None]) -> Split | None:
    present = [s for s in splits if s is not None]
    if not present:
        return None
    groups = None
    if all(s.groups is not None for s in present):
        groups = [g for s in present for g in s.groups or []]
    return Split([t for s in present for t in s.texts], [lab for s in present for lab in s.labels],
                 groups)


def stratified_split(data: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    if not 0 < fraction < 1:
        raise InputError(f"val_fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    labels = np.asarray(data.labels)
    val_mask = np.zeros(len(labels), dtype=bool)
    for label in sorted(set(data.labels)):
        members = np.flatnonzero(labels == label)
        if len(members) < 2:
            continue
        take = max(1, math.floor(fraction * len(members) + 0.5))
        val_mask[rng.permutation(members)[:take]] = True
    pick = lambda mask: data.take(np.flatnonzero(mask))  # noqa: E731
    return pick(~val_mask), pick(val_mask)
