"""Input checks shared by every module: texts, vectors, k and option values.

Each check converts once at the boundary (texts to ``list[str]``, dense vectors to C-contiguous
float32 ``(n, dim)``, sparse ones to CSR float32) and raises an :class:`InputError` (a
``ValueError``) or a ``TypeError`` that says what came in, what was expected and how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from enum import Enum
from typing import Any, TypeVar

import numpy as np

from .errors import InputError

__all__ = [
    "blank_mask",
    "check_choice",
    "check_int",
    "check_k",
    "check_texts",
    "check_vectors",
    "is_sparse",
]

E = TypeVar("E", bound=Enum)


def check_choice(value: Any, enum: type[E], *, name: str) -> E:
    """Return ``enum(value)``; a wrong value's error lists the valid ones."""
    if isinstance(value, enum):
        return value
    try:
        return enum(str(value).lower().replace("-", "_"))
    except ValueError:
        valid = ", ".join(repr(m.value) for m in enum)  # type: ignore[attr-defined]
        raise InputError(f"unknown {name} {value!r}; valid values are {valid}") from None


def check_texts(texts: Any, *, name: str = "texts", allow_empty: bool = False) -> list[str]:
    """Return ``texts`` as a list of str, rejecting a bare string, non-str items and blank texts."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{name} must be a list of strings, not a single {type(texts).__name__}; "
                        f"wrap it in a list: [{texts!r:.40}]")
    if not isinstance(texts, Iterable):
        raise TypeError(f"{name} must be an iterable of strings, got {type(texts).__name__}")
    out = list(texts)
    if not out:
        raise InputError(f"{name} is empty; give at least one text")
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] is a {type(text).__name__}, expected str")
        if not allow_empty and not text.strip():
            raise InputError(f"{name}[{i}] is empty or whitespace only; remove it or give some text")
    return out


# A character that shows something: not whitespace (str.isspace: also \x1c-\x1f, U+0085, U+2028),
# not a control character, not an invisible format mark (zero-width space, joiners, BOM,
# variation selectors). A line without one has nothing to classify or search.
_VISIBLE = re.compile(r"[^\s\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028-\u202e"
                      r"\u2060-\u206f\ufe00-\ufe0f\ufeff]")


def blank_mask(texts: Sequence[str]) -> np.ndarray:
    """Bool ``(n,)``: True for a text with no visible character (empty, whitespace, control
    characters or invisible format marks only)."""
    search = _VISIBLE.search
    return np.fromiter((search(text) is None for text in texts), dtype=bool, count=len(texts))


def is_sparse(X: Any) -> bool:
    """True for any scipy sparse matrix or array (scipy is imported only if already loaded)."""
    import sys

    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(X)


def check_vectors(X: Any, *, name: str = "vectors", dim: int | None = None) -> Any:
    """Return ``X`` as C-contiguous float32 ``(n, dim)``, or CSR float32 when sparse.

    Rejects NaN and infinity, wrong ranks and, when ``dim`` is given, a dimension mismatch.
    A 1-d input is taken as one vector.
    """
    if (type(X) is np.ndarray and X.dtype == np.float32 and X.ndim == 2
            and X.flags.c_contiguous and X.shape[0] and (dim is None or X.shape[1] == dim)
            and np.isfinite(X.sum())):
        return X  # the common case, cheaply: a NaN or an infinity makes the sum non-finite
    if is_sparse(X):
        import scipy.sparse as sp

        X = sp.csr_matrix(X, dtype=np.float32)
        if not np.isfinite(X.data).all():
            raise InputError(f"{name} contain NaN or infinity; clean or drop those rows first")
    else:
        try:
            X = np.asarray(X, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name} must be numeric arrays, got {type(X).__name__}") from e
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2:
            raise InputError(f"{name} must have shape (n, dim); got an array of shape {X.shape}")
        X = np.ascontiguousarray(X)
        if not np.isfinite(X).all():
            bad = int((~np.isfinite(X)).any(axis=1).sum())
            raise InputError(f"{name} contain NaN or infinity in {bad} row(s); clean or drop them first")
    if X.shape[0] == 0:
        raise InputError(f"{name} are empty: got 0 rows")
    if dim is not None and X.shape[1] != dim:
        raise InputError(f"{name} have dimension {X.shape[1]}, but {dim} was expected "
                         "(the index was built with another encoder or model)")
    return X


def check_int(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an int in ``[minimum, maximum]``; a bool or a float is a TypeError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise InputError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_k(k: Any, n: int | None = None) -> int:
    """Return ``k`` as a positive int, at most ``n`` (the number of items searched) when given."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an integer, got {type(k).__name__}")
    k = int(k)
    if k < 1:
        raise InputError(f"k must be at least 1, got {k}")
    if n is not None and k > n:
        raise InputError(f"k={k} is larger than the {n} items in the index; use k <= {n}")
    return k
