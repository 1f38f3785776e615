"""TweetEval folders: ``{train,val,test}_{text,labels}.txt`` and ``mapping.txt``; a folder of
such folders (the stance task, one per target) is pooled, each text keeping its target."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import InputError
from ..textfiles import read_text_file
from .records import LabelledData, Split, concat, stratified_split

logger = logging.getLogger("simtools.data")

__all__ = ["load_tweeteval", "read_lines"]


def read_lines(path: Path, encoding: str | None = None) -> list[str]:
    lines = read_text_file(path, encoding=encoding).split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line.rstrip("\r") for line in lines]


def _read_mapping(folder: Path, encoding: str | None) -> dict[str, str]:
    for candidate in (folder / "mapping.txt", folder.parent / "mapping.txt"):
        if candidate.is_file():
            mapping = {}
            for number, line in enumerate(read_lines(candidate, encoding), 1):
                if not line.strip():
                    continue
                parts = line.split("\t")
                if len(parts) < 2:
                    raise InputError(f"{candidate}:{number}: expected 'id<TAB>name', got {line!r}")
                mapping[parts[0].strip()] = parts[1].strip()
            return mapping
    return {}


def _read_tweeteval_split(folder: Path, split: str, mapping: dict[str, str],
                          encoding: str | None) -> Split | None:
    text_file, label_file = folder / f"{split}_text.txt", folder / f"{split}_labels.txt"
    if not text_file.exists():
        return None
    if not label_file.exists():
        raise InputError(f"{text_file} has no matching {label_file.name}; add it")
    texts, labels = read_lines(text_file, encoding), read_lines(label_file, encoding)
    if len(texts) != len(labels):
        raise InputError(f"{text_file} has {len(texts)} lines but {label_file} has {len(labels)}; "
                         "each text needs exactly one label line")
    names = [mapping.get(raw.strip(), raw.strip()) for raw in labels]
    for number, label in enumerate(names, 1):
        if not label:
            raise InputError(f"{label_file}:{number} is empty; every text needs a label")
    # Real data has a few empty tweets (TweetEval hate: 8): they carry nothing to learn or
    # score, so they are dropped, pair by pair, and reported rather than refused.
    empty = [number for number, text in enumerate(texts, 1) if not text.strip()]
    if empty:
        logger.warning("%s: skipped %d empty text line(s) and their labels (line %s%s)",
                       text_file, len(empty), empty[0], ", ..." if len(empty) > 1 else "")
        keep = [i for i, text in enumerate(texts) if text.strip()]
        texts, names = [texts[i] for i in keep], [names[i] for i in keep]
    return Split(texts, names)


def _grouped(split: Split | None, name: str) -> Split | None:
    return None if split is None else Split(split.texts, split.labels, [name] * len(split))


def load_tweeteval(folder: Path, encoding: str | None) -> LabelledData:
    # A folder of TweetEval folders (the stance task: one per target) is pooled into one.
    parts = [folder] if (folder / "train_text.txt").exists() else sorted(
        sub for sub in folder.iterdir() if (sub / "train_text.txt").exists())
    mapping = _read_mapping(folder, encoding)

    # Pooled, each text keeps its folder's name as its group (the stance task's target).
    def read(part: Path, name: str) -> Split | None:
        split = _read_tweeteval_split(part, name, mapping, encoding)
        return split if part == folder else _grouped(split, part.name)

    splits = {name: concat([read(p, name) for p in parts]) for name in ("train", "val", "test")}
    train = splits["train"]
    assert train is not None  # parts were chosen for having train_text.txt
    labels = list(mapping.values()) if mapping else sorted(set(train.labels))
    val = splits["val"]
    if val is None:
        train, val = stratified_split(train, 0.1, 0)
    return LabelledData(train, val, splits["test"], labels, str(folder))
