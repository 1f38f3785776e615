"""Tables (CSV, TSV, JSONL with a ``text`` column) and folders of class subfolders."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..textfiles import read_text_file
from .records import Document

__all__ = ["class_folder_documents", "is_class_folder", "read_table", "table_documents"]


def read_table(path: Path, encoding: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
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


def table_documents(path: Path, encoding: str | None = None) -> Iterator[Document]:
    for number, row in read_table(path, encoding):
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{path}:{number} has no text (a 'text' column or key is required)")
        label = row.get("label")
        title = row.get("title") or row.get("id") or f"{path.name}:{number}"
        yield Document(text, str(title), None if label in (None, "") else str(label), str(path),
                       line=number)


def class_folder_documents(folder: Path, encoding: str | None = None,
                            quiet: bool = False) -> Iterator[Document]:
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(sub.glob("*.txt")):
            text = read_text_file(file, encoding=encoding, quiet=quiet)
            if text.strip():
                yield Document(text, file.name, sub.name, str(file))


def is_class_folder(folder: Path) -> bool:
    return any(p.is_dir() and any(p.glob("*.txt")) for p in folder.iterdir())
