"""Encoders turn texts into vectors; every one follows :class:`~simtools.encoders.base.Encoder`.

This package's ``__init__`` imports nothing heavy: the numpy-only student runtime lives here
too, and ``simtools classify`` must start without scikit-learn, scipy or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BM25_SETTINGS", "ENCODER_NAMES", "BM25Encoder", "CountEncoder", "Encoder",
           "load_encoder", "make_encoder"]

_LAZY = {
    "Encoder": "simtools.encoders.base",
    "load_encoder": "simtools.encoders.base",
    "CountEncoder": "simtools.encoders.count",
    "BM25Encoder": "simtools.encoders.bm25",
}

#: Names accepted by :func:`make_encoder` (and the CLI's ``--encoder``), with what they build.
ENCODER_NAMES = {
    "bm25": "Okapi BM25 (k1 2.0, b 0.9, English stop words dropped: the setting that measured "
            "best in benchmarks/bench_retrieval.py): the lexical search engines' ranking",
    "count": "word counts (CountVectorizer): the raw bag of words",
    "tfidf": "word unigrams and bigrams, TF-IDF weighted",
    "hashing": "word counts hashed into 2^20 columns: no vocabulary, streams",
    "char": "character 2-4-grams within words, TF-IDF (any script, typos)",
    "minilm": "all-MiniLM-L6-v2 sentence embeddings, 384-d (needs simtools[teacher])",
    "student": "the bundled embedding student (static MiniLM token vectors, numpy only); "
               "student:DIR for another embedding model or a distilled classifier's vectors",
}

#: What ``make_encoder("bm25")`` sets: chosen on the validation half of
#: benchmarks/bench_retrieval.py (its "bm25_grid"); BM25Encoder() itself keeps Lucene's
#: k1 1.2, b 0.75 and no stop words.
BM25_SETTINGS: dict[str, Any] = {"k1": 2.0, "b": 0.9, "stop_words": "english"}


def make_encoder(name: str, **params: Any) -> Any:
    """A new, unfitted encoder from a short name (see :data:`ENCODER_NAMES`).

    ``params`` set the parameters of ``bm25`` (``k1``, ``b``, ``stop_words``, ...); the other
    names take none.
    """
    from .count import CountEncoder

    kind, _, argument = name.partition(":")
    if kind == "bm25":
        from .bm25 import BM25Encoder

        return BM25Encoder(**{**BM25_SETTINGS, **params})
    if params:
        from ..errors import InputError

        raise InputError(f"encoder {name!r} takes no parameters (got {', '.join(params)}); "
                         "only bm25 does")
    if kind == "count":
        return CountEncoder("count")
    if kind == "tfidf":
        return CountEncoder("tfidf", ngram_range=(1, 2), sublinear_tf=True)
    if kind == "hashing":
        return CountEncoder("hashing")
    if kind == "char":
        return CountEncoder("tfidf", analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True)
    if kind == "minilm":
        from .teacher import SentenceEncoder

        return SentenceEncoder()
    if kind == "student":
        from .student import student_encoder

        return student_encoder(argument or None)
    valid = ", ".join(sorted(ENCODER_NAMES))
    raise ValueError(f"unknown encoder {name!r}; valid values are {valid} (or student:DIR)")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simtools.encoders' has no attribute {name!r}")
