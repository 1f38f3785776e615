"""``documents.jsonl``: one line per stored vector (id, title, label, metadata), written and
read back defensively (a damaged line is a FormatError naming the line)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..persistence import FormatError, loads_json

__all__ = ["read_documents", "write_documents"]


def write_documents(path: Path, ids: Sequence[str], titles: Sequence[str | None],
                    labels: Sequence[str | None], metadata: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in zip(ids, titles, labels, metadata):
            handle.write(json.dumps(dict(zip(("id", "title", "label", "metadata"), row)),
                                    ensure_ascii=False) + "\n")


def read_documents(path: Path) -> tuple[list[str], list[str | None], list[str | None],
                                        list[dict[str, Any]]]:
    """``(ids, titles, labels, metadata)`` of a documents file."""
    ids: list[str] = []
    titles: list[str | None] = []
    labels: list[str | None] = []
    metadata_rows: list[dict[str, Any]] = []
    number = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):  # noqa: B007 (read in except)
                row = loads_json(line, where=f"{path} near line {number}")
                metadata = row.get("metadata")
                if not isinstance(metadata, (dict, type(None))):
                    raise TypeError("metadata must be an object")
                ids.append(_scalar_text(row["id"], "id"))
                titles.append(_opt_scalar_text(row.get("title"), "title"))
                labels.append(_opt_scalar_text(row.get("label"), "label"))
                metadata_rows.append(metadata or {})
    except FileNotFoundError as e:
        raise FormatError(f"{path} is missing; the index folder is incomplete") from e
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise FormatError(f"{path} is corrupted near line {number} ({e}); rebuild the index") from e
    return ids, titles, labels, metadata_rows


def _scalar_text(value: Any, name: str) -> str:
    if isinstance(value, (dict, list)) or value is None:
        raise TypeError(f"a document {name} must be a string or number, got {type(value).__name__}")
    return str(value)


def _opt_scalar_text(value: Any, name: str) -> str | None:
    return None if value is None else _scalar_text(value, name)
