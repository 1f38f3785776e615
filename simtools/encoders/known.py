"""Encoding texts that an encoder may not be able to place: which of them have a vector."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import blank_mask, check_texts
from ..metrics import row_norms

__all__ = ["encode_texts"]


def encode_texts(encoder: Any, texts: Sequence[str], *,
                 what: str = "document") -> tuple[Any, np.ndarray]:
    """``(vectors, known)`` for ``texts`` under ``encoder`` (``what="query"``: encoded as
    queries, for encoders such as bm25 that weight queries differently).

    ``known`` is bool ``(n,)``: False for a blank text (nothing visible) and for one that the
    encoder maps to the zero vector (no token it knows, e.g. "\U0001F440" for a word encoder),
    which has no direction to search by. ``vectors`` holds the raw vectors of the known texts
    only, in order (dense float32 or CSR), or is None when no text is known.
    """
    texts = check_texts(texts, allow_empty=True)
    known = ~blank_mask(texts)
    if not known.any():
        return None, known
    encode = encoder.encode
    if what == "query":
        encode = getattr(encoder, "encode_queries", encode)
    vectors = encode([text for text, ok in zip(texts, known) if ok])
    placed = row_norms(vectors) > 0
    if not placed.all():
        known[known] = placed
        vectors = vectors[placed] if placed.any() else None
    return vectors, known
