"""Okapi BM25 as a sparse encoder: the inner product of a query vector and a document vector IS
the document's BM25 score for the query.

For a document ``d`` of ``|d|`` tokens, in a collection of ``N`` documents of mean length
``avgdl``, and a query ``q``::

    BM25(q, d) = sum over terms t of q:  qtf(t) * idf(t) * tf(t, d) * (k1 + 1)
                                                 / (tf(t, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(t)     = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))

(Robertson and Zaragoza 2009; the idf is Lucene's, which never goes negative; ``qtf`` counts a
term repeated in the query once per occurrence, as Lucene, tantivy and bm25s do). So documents
and queries are weighted differently: :meth:`BM25Encoder.encode` (alias ``transform``) gives
each document term everything but ``qtf``; :meth:`BM25Encoder.encode_queries` gives each query
term its count. An :class:`~simtools.index.Index` encodes queries with ``encode_queries`` and
serves BM25 only by inner product: cosine or Euclidean would renormalise the vectors and change
the ranking, so the index refuses them (``metric`` left unset picks inner product).

Tokens are what scikit-learn's and bm25s' default pattern ``(?u)\\b\\w\\w+\\b`` finds in the
lower-cased text (words of two or more letters or digits); ``stop_words="english"`` drops
scikit-learn's English stop-word list. A document's length counts all its tokens, also those
outside the vocabulary (after a fit on the first N documents of a stream, a later document's
new words still make it longer).

``fit`` learns the vocabulary, each term's document frequency, ``N`` and ``avgdl``. Fitted on
the first N documents of a stream (``simtools index dump --fit-pages``), they stay frozen:
later documents are weighted with them, and words first seen later are not indexed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.utils.validation import check_is_fitted

from .._validation import check_texts
from ..errors import InputError
from .base import Encoder

__all__ = ["DEFAULT_B", "DEFAULT_K1", "BM25Encoder"]

#: Lucene's and tantivy's defaults (bm25s uses k1 = 1.5).
DEFAULT_K1 = 1.2
DEFAULT_B = 0.75
#: Characters of each text that are tokenised: ten times the count encoders' cap, since BM25
#: lists tokens, not n-grams, and a long article's tail is where a known-item query may lie.
DEFAULT_MAX_CHARS = 1_000_000
TOKEN_PATTERN = r"(?u)\b\w\w+\b"


def _check_number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"BM25 {name} must be a number, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        span = f"between {low:g} and {high:g}" if math.isfinite(high) else f"at least {low:g}"
        raise InputError(f"BM25 {name} must be {span}, got {value!r} (usual values: "
                         f"k1 {DEFAULT_K1}, b {DEFAULT_B})")
    return number


class BM25Encoder(Encoder):
    """Texts to sparse BM25 vectors: documents by :meth:`encode`, queries by :meth:`encode_queries`.

    Parameters
    ----------
    k1 : term-frequency saturation, >= 0 (0: a term counts once however often it occurs).
    b : document-length normalisation, 0 (none) to 1 (full).
    lowercase : fold case before tokenising.
    stop_words : None (keep every token), "english" (scikit-learn's list) or a list of words.
    ngram_range : (min_n, max_n) of the word n-grams that are terms; (1, 2) adds each pair of
        neighbouring words as a term of its own (a document's length then counts its n-grams).
    max_chars : characters of each text that are tokenised (None: all).
    """

    type_name = "bm25"
    sparse = True
    #: The only metric under which the vectors' scores mean BM25 (the Index enforces it).
    scoring_metric: ClassVar[str] = "inner_product"

    def __init__(self, *, k1: float = DEFAULT_K1, b: float = DEFAULT_B, lowercase: bool = True,
                 stop_words: str | Iterable[str] | None = None,
                 ngram_range: tuple[int, int] = (1, 1),
                 max_chars: int | None = DEFAULT_MAX_CHARS) -> None:
        self.k1 = k1
        self.b = b
        self.lowercase = lowercase
        self.stop_words = stop_words
        self.ngram_range = ngram_range
        self.max_chars = max_chars

    # -- tokens -------------------------------------------------------------------------------
    def _check_params(self) -> None:
        _check_number("k1", self.k1, 0.0, math.inf)
        _check_number("b", self.b, 0.0, 1.0)
        try:
            low, high = (int(n) for n in self.ngram_range)
        except (TypeError, ValueError):
            low = high = 0
        if not 1 <= low <= high:
            raise InputError(f"ngram_range must be (min_n, max_n) with 1 <= min_n <= max_n, "
                             f"got {self.ngram_range!r}")
        cap = self.max_chars
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, (int, np.integer))
                                or cap < 1):
            raise InputError(f"max_chars must be a positive integer or None (no limit), "
                             f"got {cap!r}")

    def _stop_set(self) -> frozenset[str]:
        words = self.stop_words
        if words is None:
            return frozenset()
        if isinstance(words, str):
            if words != "english":
                raise InputError(f"stop_words must be None, 'english' or a list of words, "
                                 f"got {words!r}")
            return frozenset(ENGLISH_STOP_WORDS)
        return frozenset(str(w).lower() if self.lowercase else str(w) for w in words)

    def _counts(self, texts: list[str]) -> tuple[list[Counter[str]], np.ndarray]:
        """Each text's token counts and its length in tokens (stop words dropped)."""
        find = re.compile(TOKEN_PATTERN).findall
        stop = self._stop_set()
        cap = self.max_chars
        ngrams = (int(self.ngram_range[0]), int(self.ngram_range[1]))
        counts: list[Counter[str]] = []
        lengths = np.empty(len(texts), dtype=np.float64)
        for i, text in enumerate(texts):
            if cap is not None and len(text) > cap:
                text = text[:cap]
            tokens = find(text.lower() if self.lowercase else text)
            if stop:
                tokens = [t for t in tokens if t not in stop]
            if ngrams != (1, 1):
                tokens = [" ".join(tokens[j:j + n]) for n in range(ngrams[0], ngrams[1] + 1)
                          for j in range(len(tokens) - n + 1)]
            lengths[i] = len(tokens)
            counts.append(Counter(tokens))
        return counts, lengths

    def _matrix(self, counts: list[Counter[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR ``(data: term counts, indices, indptr)`` over the fitted vocabulary."""
        vocabulary = self.vocabulary_
        indptr = np.zeros(len(counts) + 1, dtype=np.int64)
        columns: list[int] = []
        values: list[int] = []
        for row, counter in enumerate(counts):
            for term, n in counter.items():
                column = vocabulary.get(term)
                if column is not None:
                    columns.append(column)
                    values.append(n)
            indptr[row + 1] = len(columns)
        return (np.asarray(values, dtype=np.float64), np.asarray(columns, dtype=np.int64),
                indptr)

    # -- the Encoder contract -------------------------------------------------------------------
    def _fit(self, texts: list[str]) -> None:
        self._check_params()
        counts, lengths = self._counts(texts)
        frequencies: Counter[str] = Counter()
        for counter in counts:
            frequencies.update(counter.keys())
        if not frequencies:
            raise InputError("no text has any token BM25 can use (words of two or more letters "
                             "or digits); give longer texts, or use encoder='char'")
        terms = sorted(frequencies)
        self.vocabulary_ = {term: column for column, term in enumerate(terms)}
        self.doc_freq_ = np.asarray([frequencies[t] for t in terms], dtype=np.int64)
        self.n_documents_ = len(texts)
        self.avgdl_ = float(lengths.mean())
        self._set_idf()

    def _set_idf(self) -> None:
        df = self.doc_freq_.astype(np.float64)
        self.idf_ = np.log1p((self.n_documents_ - df + 0.5) / (df + 0.5))

    def _encode(self, texts: list[str]) -> sp.csr_matrix:
        """Document vectors: ``idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl))``."""
        self._check_params()
        counts, lengths = self._counts(texts)
        tf, columns, indptr = self._matrix(counts)
        k1, b = float(self.k1), float(self.b)
        norm = k1 * (1.0 - b + b * lengths / self.avgdl_)
        rows_norm = np.repeat(norm, np.diff(indptr))
        weights = self.idf_[columns] * tf * (k1 + 1.0) / (tf + rows_norm)
        return self._csr(weights, columns, indptr, len(texts))

    def encode_queries(self, texts: Any) -> sp.csr_matrix:
        """Query vectors, CSR float32 ``(n, dim)``: each vocabulary term's count in the query.

        Their inner product with :meth:`encode`'s document vectors is the BM25 score. A query
        with no vocabulary term is a zero row.
        """
        check_is_fitted(self, "is_fitted_", msg="This %(name)s is not fitted yet; call fit(texts) first.")
        texts = check_texts(texts, allow_empty=True)
        counts, _ = self._counts(texts)
        qtf, columns, indptr = self._matrix(counts)
        return self._csr(qtf, columns, indptr, len(texts))

    def _csr(self, data: np.ndarray, columns: np.ndarray, indptr: np.ndarray,
             rows: int) -> sp.csr_matrix:
        matrix = sp.csr_matrix((data.astype(np.float32), columns, indptr),
                               shape=(rows, self.dim))
        matrix.sort_indices()
        return matrix

    @property
    def dim(self) -> int:
        return len(self.vocabulary_)

    @property
    def vocabulary(self) -> list[str]:
        """The terms, in column order."""
        return list(self.vocabulary_)  # built in column order

    # -- persistence -------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        stop = self.stop_words
        if stop is not None and not isinstance(stop, str):
            stop = sorted(self._stop_set())
        config = {"k1": float(self.k1), "b": float(self.b), "lowercase": bool(self.lowercase),
                  "stop_words": stop, "token_pattern": TOKEN_PATTERN,
                  "ngram_range": [int(n) for n in self.ngram_range],
                  "max_chars": None if self.max_chars is None else int(self.max_chars),
                  "n_documents": int(self.n_documents_), "avgdl": float(self.avgdl_)}
        # Tokens match \w\w+, so none holds a newline: one joined string keeps the file small.
        raw = "\n".join(self.vocabulary).encode("utf-8")
        return config, {"vocabulary": np.frombuffer(raw, dtype=np.uint8),
                        "doc_freq": self.doc_freq_.astype(np.int64)}

    @classmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> BM25Encoder:
        if config.get("token_pattern") != TOKEN_PATTERN:
            raise ValueError(f"token pattern {config.get('token_pattern')!r} is not the one "
                             "this simtools uses")
        encoder = cls(k1=config["k1"], b=config["b"], lowercase=config["lowercase"],
                      stop_words=config["stop_words"], max_chars=config["max_chars"],
                      ngram_range=tuple(config["ngram_range"]))
        encoder._check_params()
        terms = arrays["vocabulary"].tobytes().decode("utf-8").split("\n")
        doc_freq = np.asarray(arrays["doc_freq"], dtype=np.int64)
        n_documents, avgdl = int(config["n_documents"]), float(config["avgdl"])
        if len(terms) != len(doc_freq) or len(terms) != config["dim"]:
            raise ValueError(f"{len(terms)} terms, {len(doc_freq)} document frequencies, "
                             f"config says {config['dim']}")
        if n_documents < 1 or not avgdl > 0 or (doc_freq < 1).any() or (doc_freq > n_documents).any():
            raise ValueError("document counts out of range")
        encoder.vocabulary_ = {term: column for column, term in enumerate(terms)}
        encoder.doc_freq_ = doc_freq
        encoder.n_documents_ = n_documents
        encoder.avgdl_ = avgdl
        encoder._set_idf()
        return encoder
