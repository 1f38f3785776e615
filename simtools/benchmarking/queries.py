"""Queries with the documents they should find: read from TSV or JSONL, matched to an index.

Two forms, one pair (or one query with several relevant documents) per line:

- **TSV**: ``query<TAB>relevant[<TAB>relevant...]``. An optional header line names the second
  column: ``query<TAB>id``, ``query<TAB>title`` or ``query<TAB>relevant`` (the default).
- **JSONL**: ``{"query": "...", "relevant": "..."}``, where the key may also be ``"id"`` /
  ``"ids"`` or ``"title"`` / ``"titles"``, and the value one reference or a list of them.

A reference names a document by its id (``id``), by its title (``title``), or by either
(``relevant``: an id first, else every document with that title). The same query on several
lines has every one of their documents relevant. Files are decoded as every reader of simtools
decodes them (:mod:`simtools.textfiles`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..textfiles import read_text_file

__all__ = ["QuerySet", "Relevance", "read_queries", "resolve_relevance"]

_FIELDS = {"relevant": "relevant", "id": "id", "ids": "id", "title": "title", "titles": "title"}


@dataclass
class QuerySet:
    """Query texts and, for each, the references of its relevant documents."""

    texts: list[str]
    references: list[list[str]]
    by: str = "relevant"  # what the references name: "id", "title" or "relevant" (either)
    source: str = ""

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class Relevance:
    """The references of a query set matched against one collection of documents."""

    relevant: list[set[str]]  # the ids relevant to each query (empty: nothing matched)
    unmatched: list[str] = field(default_factory=list)  # references that match no document

    @property
    def scorable(self) -> list[int]:
        """The positions of the queries with at least one relevant document present."""
        return [i for i, ids in enumerate(self.relevant) if ids]


def read_queries(path: str | os.PathLike[str], *, encoding: str | None = None) -> QuerySet:
    """The queries of a ``.tsv`` or ``.jsonl`` file (see the module docstring)."""
    path = Path(path)
    if path.suffix not in (".tsv", ".jsonl"):
        raise InputError(f"{path}: unsupported queries file type {path.suffix!r}; use .tsv "
                         "(query<TAB>relevant id or title) or .jsonl ({\"query\", \"relevant\"})")
    text = read_text_file(path, encoding=encoding)
    rows, by = (_jsonl_rows if path.suffix == ".jsonl" else _tsv_rows)(path, text)
    merged: dict[str, list[str]] = {}
    for query, references in rows:
        known = merged.setdefault(query, [])
        for reference in references:
            if reference not in known:
                known.append(reference)
    if not merged:
        raise InputError(f"{path} holds no queries; write one query and its relevant id or "
                         "title per line")
    return QuerySet(list(merged), list(merged.values()), by, str(path))


def _tsv_rows(path: Path, text: str) -> tuple[list[tuple[str, list[str]]], str]:
    lines = [line.rstrip("\r") for line in text.split("\n")]
    by = "relevant"
    head = lines[0].split("\t") if lines else []
    if len(head) >= 2 and head[0].strip().lower() == "query" and head[1].strip().lower() in _FIELDS:
        by, lines = _FIELDS[head[1].strip().lower()], [""] + lines[1:]
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split("\t")]
        references = [c for c in cells[1:] if c]
        if not cells[0] or not references:
            raise InputError(f"{path}:{number}: expected 'query<TAB>relevant id or title', got "
                             f"{line[:60]!r}")
        rows.append((cells[0], references))
    return rows, by


def _jsonl_rows(path: Path, text: str) -> tuple[list[tuple[str, list[str]]], str]:
    rows, kinds = [], set()
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise InputError(f"{path}:{number} is not valid JSON") from None
        key = next((k for k in _FIELDS if isinstance(row, dict) and k in row), None)
        query = row.get("query", row.get("text")) if isinstance(row, dict) else None
        if key is None or not isinstance(query, str) or not query.strip():
            raise InputError(f"{path}:{number} must be an object with a 'query' and a "
                             "'relevant' (or 'id' or 'title') key")
        kinds.add(_FIELDS[key])
        rows.append((query.strip(), _references(row[key], path, number)))
    by = kinds.pop() if len(kinds) == 1 else "relevant"
    return rows, by


def _references(value: Any, path: Path, number: int) -> list[str]:
    values = value if isinstance(value, list) else [value]
    out = [str(v).strip() for v in values
           if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip()]
    if len(out) != len(values) or not out:
        raise InputError(f"{path}:{number}: the relevant documents must be ids or titles "
                         "(strings or numbers), one or a list")
    return out


def resolve_relevance(queries: QuerySet, ids: Sequence[str],
                      titles: Sequence[str | None]) -> Relevance:
    """Match every query's references against documents (``ids`` and ``titles`` in position
    order). Raises InputError when no query's relevant documents are there at all."""
    by_id = set(map(str, ids))
    by_title: dict[str, list[str]] = {}
    for doc_id, title in zip(ids, titles):
        if title is not None:
            by_title.setdefault(str(title), []).append(str(doc_id))
    relevant, unmatched = [], []
    for references in queries.references:
        found: set[str] = set()
        for ref in references:
            if queries.by != "title" and ref in by_id:
                found.add(ref)
            elif queries.by != "id" and ref in by_title:
                found.update(by_title[ref])
            else:
                unmatched.append(ref)
        relevant.append(found)
    result = Relevance(relevant, unmatched)
    if not result.scorable:
        what = {"id": "id", "title": "title"}.get(queries.by, "id or title")
        raise InputError(f"none of the {len(queries)} queries' relevant documents is in the "
                         f"index: all {len(unmatched)} reference(s) match no document {what} "
                         f"(e.g. {unmatched[0]!r}); check the queries file against the index")
    return result
