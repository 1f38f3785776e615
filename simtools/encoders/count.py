"""Sparse bag-of-n-grams encoders: raw counts, TF-IDF and hashing (scikit-learn vectorizers).

Word n-grams suit space-separated languages; character n-grams (``analyzer="char_wb"``) make
unsegmented or agglutinative scripts work (Korean Hangul, Chinese) and tolerate misspellings.
Output is CSR float32; nothing is densified.

Each text is cut to its first ``max_chars`` characters (100,000 by default, a long article)
before tokenising, in ``fit`` and ``encode`` alike: scikit-learn lists every n-gram of a text
before counting, so one 50 MB line would take gigabytes and minutes, and a text's tail adds
little to its vector.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer

from .._validation import check_choice
from ..errors import InputError
from .base import Encoder

__all__ = ["DEFAULT_MAX_CHARS", "Analyzer", "CountEncoder", "CountKind"]

#: Characters of each text that are encoded (the rest is ignored).
DEFAULT_MAX_CHARS = 100_000


class CountKind(str, Enum):
    COUNT = "count"  # raw term counts: grow with the text's length
    TFIDF = "tfidf"  # counts reweighted by inverse document frequency
    HASHING = "hashing"  # counts in a fixed number of hashed columns: no vocabulary to fit


class Analyzer(str, Enum):
    WORD = "word"
    CHAR = "char"
    CHAR_WB = "char_wb"  # character n-grams inside word boundaries


class CountEncoder(Encoder):
    """Texts to sparse n-gram vectors.

    Parameters
    ----------
    kind : "count", "tfidf" or "hashing".
    analyzer : "word", "char" or "char_wb".
    ngram_range : (min_n, max_n) of the n-grams.
    lowercase : fold case before tokenising.
    min_df, max_features : vocabulary pruning (count and tfidf).
    n_features : columns of the hashing space (hashing only).
    sublinear_tf : use ``1 + log(tf)`` (tfidf only).
    max_chars : characters of each text that are encoded, the rest ignored (``None``: all;
        see the module docstring for why there is a cap).
    """

    type_name = "count"
    sparse = True

    def __init__(self, kind: str | CountKind = "count", *, analyzer: str | Analyzer = "word",
                 ngram_range: tuple[int, int] = (1, 1), lowercase: bool = True, min_df: int = 1,
                 max_features: int | None = None, n_features: int = 2**20,
                 sublinear_tf: bool = False, max_chars: int | None = DEFAULT_MAX_CHARS) -> None:
        self.kind = kind
        self.analyzer = analyzer
        self.ngram_range = ngram_range
        self.lowercase = lowercase
        self.min_df = min_df
        self.max_features = max_features
        self.n_features = n_features
        self.sublinear_tf = sublinear_tf
        self.max_chars = max_chars

    def _cut(self, texts: list[str]) -> list[str]:
        """``texts``, each cut to ``max_chars`` characters (only the long ones are copied)."""
        cap = self.max_chars
        if cap is None:
            return texts
        if isinstance(cap, bool) or not isinstance(cap, (int, np.integer)) or cap < 1:
            raise InputError(f"max_chars must be a positive integer or None (no limit), "
                             f"got {cap!r}")
        return [text[:cap] if len(text) > cap else text for text in texts]

    def _vectorizer_args(self) -> dict[str, Any]:
        ngram = tuple(int(n) for n in self.ngram_range)
        if len(ngram) != 2 or not 1 <= ngram[0] <= ngram[1]:
            raise ValueError(f"ngram_range must be (min_n, max_n) with 1 <= min_n <= max_n, got {self.ngram_range}")
        analyzer = check_choice(self.analyzer, Analyzer, name="analyzer")
        return {"analyzer": analyzer.value, "ngram_range": ngram, "lowercase": self.lowercase,
                "dtype": np.float32}

    def _make(self, vocabulary: dict[str, int] | None = None) -> Any:
        kind = check_choice(self.kind, CountKind, name="encoder kind")
        args = self._vectorizer_args()
        if kind is CountKind.HASHING:
            return HashingVectorizer(n_features=int(self.n_features), alternate_sign=False,
                                     norm=None, **args)
        args.update(min_df=self.min_df, max_features=self.max_features, vocabulary=vocabulary)
        if kind is CountKind.TFIDF:
            return TfidfVectorizer(sublinear_tf=self.sublinear_tf, **args)
        return CountVectorizer(**args)

    def _fit(self, texts: list[str]) -> None:
        texts = self._cut(texts)
        self.vectorizer_ = self._make()
        try:
            self.vectorizer_.fit(texts)
        except ValueError as e:
            if "empty vocabulary" in str(e):
                raise ValueError("no text has any token this encoder can use (empty vocabulary); "
                                 "give longer texts, or use analyzer='char_wb' for scripts without "
                                 "spaces or for very short texts") from e
            raise

    def _encode(self, texts: list[str]) -> sp.csr_matrix:
        return sp.csr_matrix(self.vectorizer_.transform(self._cut(texts)), dtype=np.float32)

    @property
    def dim(self) -> int:
        if isinstance(self.vectorizer_, HashingVectorizer):
            return int(self.vectorizer_.n_features)
        return len(self.vectorizer_.vocabulary_)

    @property
    def vocabulary(self) -> list[str]:
        """The terms, in column order (empty for hashing)."""
        if isinstance(self.vectorizer_, HashingVectorizer):
            return []
        terms = [""] * len(self.vectorizer_.vocabulary_)
        for term, column in self.vectorizer_.vocabulary_.items():
            terms[column] = term
        return terms

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        params = {"encoder_kind": check_choice(self.kind, CountKind, name="encoder kind").value,
                  "analyzer": check_choice(self.analyzer, Analyzer, name="analyzer").value,
                  "ngram_range": list(self.ngram_range), "lowercase": self.lowercase,
                  "min_df": self.min_df, "max_features": self.max_features,
                  "n_features": self.n_features, "sublinear_tf": self.sublinear_tf,
                  "max_chars": None if self.max_chars is None else int(self.max_chars)}
        arrays: dict[str, np.ndarray] = {}
        terms = self.vocabulary
        if terms:
            if any("\n" in term for term in terms):
                raise ValueError("a vocabulary term contains a newline; cannot save this encoder")
            arrays["vocabulary"] = np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8)
        else:
            arrays["vocabulary"] = np.zeros(0, dtype=np.uint8)
        if isinstance(self.vectorizer_, TfidfVectorizer):
            arrays["idf"] = np.asarray(self.vectorizer_.idf_, dtype=np.float64)
        return params, arrays

    @classmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> CountEncoder:
        encoder = cls(config["encoder_kind"], analyzer=config["analyzer"],
                      ngram_range=tuple(config["ngram_range"]), lowercase=config["lowercase"],
                      min_df=config["min_df"], max_features=config["max_features"],
                      n_features=config["n_features"], sublinear_tf=config["sublinear_tf"],
                      # Folders saved before the cap existed get the default cap: it changes
                      # nothing for texts shorter than that, and bounds the cost of longer ones.
                      max_chars=config.get("max_chars", DEFAULT_MAX_CHARS))
        raw = arrays["vocabulary"].tobytes().decode("utf-8")
        vocabulary = {term: i for i, term in enumerate(raw.split("\n"))} if raw else None
        encoder.vectorizer_ = encoder._make(vocabulary)
        if vocabulary is not None:
            encoder.vectorizer_._validate_vocabulary()
            if len(vocabulary) != config["dim"]:
                raise ValueError(f"vocabulary has {len(vocabulary)} terms, config says {config['dim']}")
        if isinstance(encoder.vectorizer_, TfidfVectorizer):
            encoder.vectorizer_.idf_ = arrays["idf"]
        return encoder
