"""Classified texts as output lines: one line per input line, in order, whatever it held.

A text is classified, ``UNKNOWN`` (the model cannot read it) or ``EMPTY`` (nothing visible).
Lines are ``LABEL<TAB>PROBABILITY[<TAB>LABEL<TAB>PROBABILITY...]<TAB>TEXT`` (a carriage return
or newline in TEXT written as ``\\r``/``\\n``), or one JSON object each. The command line and
the Ray engine (:mod:`simtools.classify.ray_file`) write the same lines.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .._validation import blank_mask

__all__ = ["EMPTY", "EMPTY_REASON", "UNKNOWN", "format_lines", "split_lines", "statuses"]

EMPTY, UNKNOWN = "EMPTY", "UNKNOWN"
EMPTY_REASON = "nothing visible (blank, whitespace or control characters)"

#: The status of an input line: classified, UNKNOWN or EMPTY.
OK, UNKNOWN_CODE, EMPTY_CODE = 0, 1, 2
_STATUS_WORD = np.array(["", UNKNOWN, EMPTY], dtype=object)
# Probabilities are printed with 3 decimals: the strings are looked up instead of formatting
# every float (the formatting cost more than the model at 100k texts/s).
_PERMILLE = np.array([f"{i / 1000:.3f}" for i in range(1001)], dtype=object)


def split_lines(text: str) -> list[str]:
    """The lines of ``text``: each ends at "\\n" (or "\\r\\n"), the last newline optional.

    Only "\\n" ends a line: ``str.splitlines`` would also split at U+2028, U+0085 or \\f, and
    the outputs would no longer line up with the input lines (``wc -l``).
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return lines


def statuses(texts: list[str], known: np.ndarray) -> np.ndarray:
    """int8 ``(n,)``: OK, UNKNOWN_CODE or EMPTY_CODE for every text."""
    status = np.where(known, OK, UNKNOWN_CODE).astype(np.int8)
    status[blank_mask(texts)] = EMPTY_CODE
    return status


def format_lines(texts: list[str], proba: np.ndarray, labels: list[str], top_k: int,
                 as_json: bool, status: np.ndarray, unknown_reason: str) -> str:
    """One output line per text (each ending in a newline), the ``top_k`` labels of each."""
    top_k = max(1, min(top_k, len(labels)))
    order = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]
    if as_json:
        return _json_lines(texts, proba, labels, order, status, unknown_reason)
    names = np.asarray(labels, dtype=object)
    columns = []
    failed = status != OK
    for j in range(top_k):
        column_names = names[order[:, j]]
        permille = np.rint(np.take_along_axis(proba, order[:, j:j + 1], axis=1)[:, 0] * 1000)
        best = _PERMILLE[np.clip(permille.astype(np.int64), 0, 1000)]
        if failed.any():
            column_names[failed] = _STATUS_WORD[status[failed]]
            best[failed] = "-"
        columns += [column_names.tolist(), best.tolist()]
    columns.append(texts)
    out = "\n".join(map("\t".join, zip(*columns))) + "\n"
    if out.count("\n") != len(texts):  # a newline inside a text given as an argument
        columns[-1] = [text.replace("\n", "\\n") for text in texts]
        out = "\n".join(map("\t".join, zip(*columns))) + "\n"
    # A raw carriage return would end the line for readers with universal newlines.
    return out.replace("\r", "\\r") if "\r" in out else out


def _json_lines(texts: list[str], proba: np.ndarray, labels: list[str], order: np.ndarray,
                status: np.ndarray, unknown_reason: str) -> str:
    errors = {UNKNOWN_CODE: f"{UNKNOWN}: {unknown_reason}", EMPTY_CODE: f"{EMPTY}: {EMPTY_REASON}"}
    lines = []
    for text, row, best, code in zip(texts, proba.tolist(), order, status.tolist()):
        record: dict[str, Any]
        if code != OK:
            record = {"text": text, "label": None, "probabilities": {}, "error": errors[code]}
        else:
            record = {"text": text, "label": labels[best[0]],
                      "probabilities": {labels[j]: round(row[j], 6) for j in best}}
        lines.append(json.dumps(record, ensure_ascii=False))
    return "\n".join(lines) + "\n"
