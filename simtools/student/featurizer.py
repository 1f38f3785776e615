"""Hashed word and character n-gram features, vectorised over a whole batch (numpy only).

This module is on the cold-start path of ``simtools classify``: it imports numpy and nothing
else. A batch of texts is joined into one string, lower-cased once and viewed as an array of
Unicode code points; every feature of every text is then computed with whole-array operations:

- a lookup classifies each code point as a separator (whitespace), a word character (letters,
  digits, any script: Latin, Hangul, CJK, ...) or a symbol (punctuation, emoji), which is a
  token of its own;
- tokens are maximal runs of word characters, plus each symbol on its own; a token's hash is a
  polynomial hash of its code points, read off prefix sums: with ``P[i] = sum_{j<i} c_j B^j``
  (mod 2^64), the span ``[s, e)`` hashes to ``(P[e] - P[s]) * B^-s`` (``B`` odd, so it has an
  inverse mod 2^64);
- word bigrams combine the hashes of neighbouring tokens of the same text;
- character n-grams (fastText style) are the windows of ``<word>`` with ``<`` and ``>`` the word
  boundaries, hashed by a rolling polynomial over the code points;
- every hash is salted by its kind, mixed and mapped to one of ``buckets`` (a power of two) by
  multiply-shift: ``(h * A) >> (64 - log2(buckets))``.

Nothing is ever unknown: any text with at least one token has features. Letters and digits in
compatibility forms ('ˢᴵᴺᶜᴱ', full-width, mathematical bold) are first mapped to their NFKC
form (:mod:`simtools.student.compat`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import compat

__all__ = ["N_PAGES", "Features", "HashingFeaturizer", "page_mask", "script_pages"]

_U64 = np.uint64
_BASE = _U64(0x100000001B3)  # odd: invertible mod 2^64
_MIX = _U64(0x9E3779B97F4A7C15)
_PAIR = _U64(0xC2B2AE3D27D4EB4F)
_SALT_TOKEN = _U64(0x51ED27)
_SALT_BIGRAM = _U64(0x2545F4914F6CDD1D)
_SALT_CHAR = [_U64((0xA0761D6478BD642F * (n + 1)) % (1 << 64)) for n in range(9)]
_BOUNDARY = 2  # code point that stands for '<' and '>' (any non-word character)

SEPARATOR, WORD, SYMBOL = 0, 1, 2

# Symbol blocks of the Basic Multilingual Plane: each code point is a token of its own.
_BMP_SYMBOLS = [
    (0x00A1, 0x00BF), (0x2010, 0x2027), (0x2030, 0x205E), (0x20A0, 0x20CF), (0x2100, 0x214F),
    (0x2190, 0x23FF), (0x2460, 0x27BF), (0x2900, 0x2BFF), (0x3001, 0x303F), (0xFF01, 0xFF0F),
    (0xFF1A, 0xFF20),
]
_BMP_SEPARATORS = [(0x0000, 0x0020), (0x007F, 0x00A0), (0x2000, 0x200F), (0x2028, 0x202F),
                   (0x205F, 0x206F), (0x3000, 0x3000), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF)]


def _build_bmp_table() -> np.ndarray:
    table = np.full(0x10000, WORD, dtype=np.uint8)
    for lo, hi in _BMP_SYMBOLS:
        table[lo:hi + 1] = SYMBOL
    ascii_punct = b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    table[np.frombuffer(ascii_punct, dtype=np.uint8)] = SYMBOL
    for lo, hi in _BMP_SEPARATORS:
        table[lo:hi + 1] = SEPARATOR
    return table


_BMP_TABLE = _build_bmp_table()


def char_classes(cps: np.ndarray) -> np.ndarray:
    """Class (separator, word, symbol) of each code point; ``cps`` uint32 ``(n,)`` -> uint8."""
    if cps.size == 0 or int(cps.max()) < 0x10000:
        return _BMP_TABLE[cps]
    classes = _BMP_TABLE[np.minimum(cps, 0xFFFF)]
    astral = cps >= 0x10000
    # Emoji and pictographs are symbols; skin-tone modifiers and tag characters only modify the
    # emoji before them, so they separate; other astral code points (CJK extensions, ...) are words.
    emoji = (cps >= 0x1F000) & (cps <= 0x1FAFF)
    modifier = ((cps >= 0x1F3FB) & (cps <= 0x1F3FF)) | ((cps >= 0xE0000) & (cps <= 0xE007F))
    classes[astral] = WORD
    classes[emoji] = SYMBOL
    classes[modifier] = SEPARATOR
    return classes


@dataclass
class Features:
    """Hashed features of a batch, one group per kind, each sorted by text.

    ``ids[k]`` holds bucket ids (int64) of feature kind ``k``; ``starts[k]`` (int64, ``(n+1,)``)
    marks where each text's features of that kind begin, so text ``i`` owns
    ``ids[k][starts[k][i]:starts[k][i+1]]``.
    """

    ids: list[np.ndarray] = field(default_factory=list)
    starts: list[np.ndarray] = field(default_factory=list)
    #: Per text, how many of its words start in the pages given to ``transform``.
    known_words: np.ndarray | None = None

    @property
    def counts(self) -> np.ndarray:
        """Number of features of each text, int64 ``(n,)``."""
        total = np.zeros(len(self.starts[0]) - 1, dtype=np.int64)
        for s in self.starts:
            total += np.diff(s)
        return total

    def bags(self) -> tuple[np.ndarray, np.ndarray]:
        """All features as (ids, offsets) grouped by text, the layout of torch EmbeddingBag."""
        counts = self.counts
        offsets = np.zeros(len(counts), dtype=np.int64)
        np.cumsum(counts[:-1], out=offsets[1:])
        out = np.empty(int(counts.sum()), dtype=np.int64)
        cursor = offsets.copy()
        for ids, s in zip(self.ids, self.starts, strict=True):
            n = np.diff(s)
            # position of each feature inside its text's block of this kind
            text_of = np.repeat(np.arange(len(n)), n)
            within = np.arange(len(ids)) - s[:-1][text_of]
            out[cursor[text_of] + within] = ids
            cursor += n
        return out, offsets


class _Powers:
    """Cached powers of the hash base and of its inverse, mod 2^64, grown on demand.

    Thread-safe: both arrays are replaced together, as one tuple, under a lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrays = (np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64))

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        powers, inverses = self._arrays
        if len(powers) < n:
            with self._lock:
                powers, inverses = self._arrays
                if len(powers) < n:
                    size = max(n, 2 * len(powers))
                    inv_base = pow(int(_BASE), -1, 1 << 64)
                    powers = np.cumprod(np.concatenate(
                        [[np.uint64(1)], np.full(size - 1, _BASE, dtype=np.uint64)]), dtype=np.uint64)
                    inverses = np.cumprod(np.concatenate(
                        [[np.uint64(1)], np.full(size - 1, inv_base, dtype=np.uint64)]),
                        dtype=np.uint64)
                    self._arrays = (powers, inverses)
        return powers[:n], inverses[:n]


_POWERS = _Powers()


#: Unicode is split into pages of 256 code points (U+0000..U+10FFFF: 0x1100 pages).
N_PAGES = 0x1100


def _joined(texts: Sequence[str], lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cps, text_starts)``: the lower-cased code points of the texts joined by a space (and
    one leading), so that no token or n-gram crosses from one text to the next and every word
    has a boundary on both sides; text ``i`` starts at ``text_starts[i]``."""
    n = len(texts)
    text_starts = np.ones(n + 1, dtype=np.int64)
    np.cumsum(lengths + 1, out=text_starts[1:])
    text_starts[1:] += 1
    cps = np.frombuffer((" " + " ".join(texts).lower()).encode("utf-32-le", "surrogatepass"),
                        dtype=np.uint32)
    if len(cps) != text_starts[-1] - 1:
        # lower() changed the length of some text (e.g. 'İ' -> 'i̇'): lower each text alone.
        lowered = [t.lower() for t in texts]
        lengths = np.fromiter(map(len, lowered), dtype=np.int64, count=n)
        np.cumsum(lengths + 1, out=text_starts[1:])
        text_starts[1:] += 1
        cps = np.frombuffer((" " + " ".join(lowered)).encode("utf-32-le", "surrogatepass"),
                            dtype=np.uint32)
    return cps, text_starts


def script_pages(texts: Sequence[str], *, min_share: float = 1e-4) -> list[int]:
    """The 256-code-point pages that hold at least ``min_share`` of the letters and digits of
    ``texts``: a cheap record of the scripts a model was trained on (Latin, Hangul, ...)."""
    cps = np.frombuffer(" ".join(texts).lower().encode("utf-32-le", "surrogatepass"),
                        dtype=np.uint32)
    if compat.find(cps, np.zeros(1, np.int64)):  # as transform() sees them
        joined = compat.rewrite(" ".join(texts)).lower()
        cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    pages = cps[char_classes(cps) == WORD] >> 8
    counts = np.bincount(pages, minlength=N_PAGES)
    return [int(p) for p in np.flatnonzero(counts >= max(1, min_share * len(pages)))]


def page_mask(pages: Sequence[int]) -> np.ndarray:
    """Bool ``(N_PAGES,)`` lookup of the given pages, for ``HashingFeaturizer.transform``."""
    mask = np.zeros(N_PAGES, dtype=bool)
    mask[np.asarray(pages, dtype=np.int64)] = True
    return mask


class HashingFeaturizer:
    """Texts -> hashed bucket ids of word unigrams, word bigrams and char n-grams.

    ``buckets`` must be a power of two; ``char_ngrams`` is an inclusive range ``(min, max)``
    (``(0, 0)`` for none); ``word_ngrams`` is 1 (unigrams) or 2 (plus bigrams); texts longer
    than ``max_chars`` are cut (long documents gain little from their tail).
    """

    def __init__(self, *, buckets: int = 1 << 17, char_ngrams: tuple[int, int] = (3, 5),
                 word_ngrams: int = 2, max_chars: int = 4000, seed: int = 0) -> None:
        if buckets < 2 or buckets & (buckets - 1):
            raise ValueError(f"buckets must be a power of two >= 2, got {buckets}; "
                             "e.g. 131072 (2**17)")
        lo, hi = (int(v) for v in char_ngrams)
        if (lo, hi) != (0, 0) and not 3 <= lo <= hi <= 8:
            raise ValueError(f"char_ngrams must be (min, max) with 3 <= min <= max <= 8, or (0, 0) "
                             f"for none; got {char_ngrams}")
        if word_ngrams not in (1, 2):
            raise ValueError(f"word_ngrams must be 1 or 2, got {word_ngrams}")
        if max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {max_chars}")
        self.buckets = int(buckets)
        self.char_ngrams = (lo, hi)
        self.word_ngrams = int(word_ngrams)
        self.max_chars = int(max_chars)
        self.seed = int(seed)
        self._shift = _U64(64 - (self.buckets.bit_length() - 1))
        self._seed_mix = _U64((self.seed * 0x9E3779B1 + 0x7F4A7C15) % (1 << 64))

    # -- parameters, for config.json ----------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """JSON-able parameters: ``HashingFeaturizer(**params)`` rebuilds the same featurizer."""
        return {"buckets": self.buckets, "char_ngrams": list(self.char_ngrams),
                "word_ngrams": self.word_ngrams, "max_chars": self.max_chars, "seed": self.seed}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> HashingFeaturizer:
        return cls(buckets=int(params["buckets"]), char_ngrams=tuple(params["char_ngrams"]),
                   word_ngrams=int(params["word_ngrams"]), max_chars=int(params["max_chars"]),
                   seed=int(params.get("seed", 0)))

    # -- features -----------------------------------------------------------------------------
    def _bucket(self, h: np.ndarray, salt: np.ndarray | np.uint64) -> np.ndarray:
        h = (h + salt) ^ self._seed_mix
        h ^= h >> _U64(29)
        h *= _MIX
        return (h >> self._shift).astype(np.int64)

    def transform(self, texts: Sequence[str], *, known_pages: np.ndarray | None = None) -> Features:
        """Features of ``texts`` (a list of str); texts need not be non-empty.

        ``known_pages`` (bool ``(N_PAGES,)``, see :func:`script_pages`) also counts, per text,
        the words that start with a letter or digit of those 256-code-point pages
        (``Features.known_words``).
        """
        n = len(texts)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
        if n and int(lengths.max()) > self.max_chars:
            texts = [t[: self.max_chars] for t in texts]
            np.minimum(lengths, self.max_chars, out=lengths)
        cps, text_starts = _joined(texts, lengths)
        rewritten = compat.find(cps, text_starts)
        if rewritten:  # 'ˢᴵᴺᶜᴱ' -> 'SINCE', before lower-casing
            texts = list(texts)
            for i in rewritten:
                texts[i] = compat.rewrite(texts[i])[: self.max_chars]
            lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
            cps, text_starts = _joined(texts, lengths)
        # one trailing separator, so every token ends before the end of the array
        cps = np.concatenate([cps, np.zeros(1, dtype=np.uint32)])
        classes = char_classes(cps)
        feats = Features()
        self._tokens(cps, classes, text_starts, feats, known_pages)
        if self.char_ngrams != (0, 0):
            self._char_ngrams(cps, classes, text_starts, feats)
        return feats

    def _tokens(self, cps: np.ndarray, classes: np.ndarray, text_starts: np.ndarray,
                feats: Features, known_pages: np.ndarray | None = None) -> None:
        word = classes == WORD
        # token starts: a word char after a non-word char, or any symbol; ends likewise
        prev_word = np.empty_like(word)
        prev_word[0] = False
        prev_word[1:] = word[:-1]
        next_word = np.empty_like(word)
        next_word[-1] = False
        next_word[:-1] = word[1:]
        symbol = classes == SYMBOL
        starts = np.flatnonzero((word & ~prev_word) | symbol)
        ends = np.flatnonzero((word & ~next_word) | symbol) + 1
        powers, inverses = _POWERS.get(len(cps) + 1)
        prefix = np.zeros(len(cps) + 1, dtype=np.uint64)
        np.cumsum(cps.astype(np.uint64) * powers[: len(cps)], out=prefix[1:])
        token_hash = (prefix[ends] - prefix[starts]) * inverses[starts]
        bounds = np.searchsorted(starts, text_starts)
        if known_pages is not None:
            # Words (not symbols) whose first character lies in a known page; counted on
            # tokens rather than characters, which is several times cheaper.
            first = cps[starts]
            known = word[starts] & known_pages[first >> 8]
            seen = np.zeros(len(known) + 1, dtype=np.int64)
            np.cumsum(known, out=seen[1:])
            feats.known_words = seen[bounds[1:]] - seen[bounds[:-1]]
        feats.ids.append(self._bucket(token_hash, _SALT_TOKEN))
        feats.starts.append(bounds)
        if self.word_ngrams >= 2 and len(starts) > 1:
            # bigram i joins token i and i+1; it belongs to the text of token i if both share it
            text_of = np.searchsorted(text_starts, starts, side="right") - 1
            same = text_of[:-1] == text_of[1:]
            pair = token_hash[:-1][same] * _PAIR + token_hash[1:][same]
            pair_pos = starts[:-1][same]
            feats.ids.append(self._bucket(pair, _SALT_BIGRAM))
            feats.starts.append(np.searchsorted(pair_pos, text_starts))
        elif self.word_ngrams >= 2:
            feats.ids.append(np.zeros(0, dtype=np.int64))
            feats.starts.append(np.zeros(len(text_starts), dtype=np.int64))

    def _char_ngrams(self, cps: np.ndarray, classes: np.ndarray, text_starts: np.ndarray,
                     feats: Features) -> None:
        word = classes == WORD
        codes = np.where(word, cps, np.uint32(_BOUNDARY)).astype(np.uint64)
        inside = np.zeros(len(cps) + 1, dtype=np.int32)
        np.cumsum(word, out=inside[1:])
        lo, hi = self.char_ngrams
        rolling = codes.copy()
        for n in range(1, hi + 1):
            if n > 1:
                rolling = rolling[:-1] * _BASE + codes[n - 1:]
            if n < lo:
                continue
            m = len(rolling)
            # a window is a fastText n-gram of '<word>' when all but its two ends are word
            # chars (the ends may be word chars or boundaries); n >= 3, so it has an interior
            valid = (inside[n - 1: n - 1 + m] - inside[1: 1 + m]) == n - 2
            positions = np.flatnonzero(valid)
            feats.ids.append(self._bucket(rolling[positions], _SALT_CHAR[n]))
            # a window belongs to the text of its first interior character
            feats.starts.append(np.searchsorted(positions + 1, text_starts))
