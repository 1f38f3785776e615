"""The teacher's own tokeniser, re-implemented in plain Python: BERT-uncased WordPiece.

all-MiniLM-L6-v2 reads text through the ``bert-base-uncased`` pipeline of the ``tokenizers``
library. The embedding student reads it the same way, without that library, so that its
vectors for a token are the teacher's own token's:

1. normalise: drop control characters, map whitespace to spaces, put spaces around CJK
   ideographs, decompose (NFD) and drop the combining marks (accents), lower-case;
2. split on whitespace, and make every punctuation character (ASCII punctuation and Unicode
   category P) a word of its own;
3. WordPiece: each word is cut greedily into the longest vocabulary entries from its start,
   later pieces prefixed ``##``; a word that cannot be cut, or is longer than 100 characters,
   is ``[UNK]``.

Each distinct word is cut once and remembered (a dict, cleared when it passes
:data:`CACHE_WORDS` entries), so a batch costs about one dict look-up per word.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np

__all__ = ["CACHE_WORDS", "WordPiece", "split_words"]

#: Distinct words remembered before the cache is cleared (about 100 MB at most).
CACHE_WORDS = 500_000
MAX_WORD_CHARS = 100
UNK, CLS, SEP, PAD = "[UNK]", "[CLS]", "[SEP]", "[PAD]"

_CJK = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_punctuation(cp: int, category: str) -> bool:
    # BERT counts every non-letter, non-digit ASCII symbol as punctuation ($, +, <, ^, ...)
    return category[0] == "P" or 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 \
        or 123 <= cp <= 126


def _normal_form(cp: int) -> str:
    """What one character becomes: punctuation and CJK ideographs padded with spaces (each is
    a word), control, format, private-use and unassigned characters dropped (tab, newline and
    carriage return separate words), letters decomposed, their accents dropped, lower-cased."""
    char = chr(cp)
    category = unicodedata.category(char)
    if _is_punctuation(cp, category) or any(lo <= cp <= hi for lo, hi in _CJK):
        return f" {char} "
    if category[0] == "C" and cp not in (9, 10, 13) or cp == 0xFFFD:
        return ""
    # 'Σ' lowers to 'σ' everywhere: str.lower() writes the final form 'ς' at a word's end,
    # where the teacher's tokeniser, lowering one character at a time, writes 'σ'
    decomposed = unicodedata.normalize("NFD", char).replace("Σ", "σ")
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()


class _CharMap(dict):  # type: ignore[type-arg]
    """Code point -> its normal form, for ``str.translate``: each filled on first sight (so no
    table of all of Unicode is built; dict writes are atomic under the GIL)."""

    def __missing__(self, cp: int) -> str:
        out = self[cp] = _normal_form(cp)
        return out


_CHARS = _CharMap()
# ASCII: only punctuation and control characters change (the text is lower-cased first)
_ASCII = {cp: _normal_form(cp) for cp in range(128) if _normal_form(cp) != chr(cp).lower()}


def split_words(text: str) -> list[str]:
    """The words of ``text`` after the BERT-uncased normaliser and pre-tokeniser (steps 1 and
    2 of the module docstring)."""
    if text.isascii():
        return text.lower().translate(_ASCII).split()
    return text.translate(_CHARS).split()


class WordPiece:
    """Texts -> token ids of a WordPiece vocabulary (``vocab[i]`` is the token of id ``i``).

    ``max_tokens`` (None: all) keeps only each text's first tokens, as the teacher keeps its
    first 254 between ``[CLS]`` and ``[SEP]``.
    """

    def __init__(self, vocab: Sequence[str], *, max_tokens: int | None = None) -> None:
        self.vocab = [str(token) for token in vocab]
        self.index = {token: i for i, token in enumerate(self.vocab)}
        if len(self.index) != len(self.vocab):
            raise ValueError(f"the vocabulary has {len(self.vocab) - len(self.index)} duplicate "
                             "token(s); each token must appear once")
        if UNK not in self.index:
            raise ValueError(f"the vocabulary has no {UNK} token")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be None or >= 1, got {max_tokens}")
        self.max_tokens = max_tokens
        self.unk_id = self.index[UNK]
        self._longest = max(len(t[2:] if t.startswith("##") else t) for t in self.vocab)
        self._cache: dict[str, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self.vocab)

    def pieces(self, word: str) -> tuple[int, ...]:
        """The ids of one normalised word (step 3)."""
        if len(word) > MAX_WORD_CHARS:
            return (self.unk_id,)
        index, out, start = self.index, [], 0
        while start < len(word):
            end = min(len(word), start + self._longest)
            prefix = "##" if start else ""
            while end > start:
                found = index.get(prefix + word[start:end])
                if found is not None:
                    out.append(found)
                    break
                end -= 1
            else:
                return (self.unk_id,)
            start = end
        return tuple(out)

    def word_ids(self, word: str) -> tuple[int, ...]:
        """:meth:`pieces`, remembered."""
        found = self._cache.get(word)
        if found is None:
            if len(self._cache) >= CACHE_WORDS:
                self._cache.clear()
            found = self._cache[word] = self.pieces(word)
        return found

    def clear_cache(self) -> None:
        """Forget the words cut so far (the next :meth:`encode` starts cold)."""
        self._cache.clear()

    def tokenize(self, text: str) -> list[str]:
        """The tokens of one text, as strings (for inspection and tests)."""
        return [self.vocab[i] for i in self.encode([text])[0]]

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, starts)``: int32 ids of every text's tokens, concatenated, and int64
        ``(n + 1,)`` offsets, text ``i`` owning ``ids[starts[i]:starts[i + 1]]``."""
        cache, miss, cap = self._cache, self.word_ids, self.max_tokens
        flat: list[int] = []
        starts = np.zeros(len(texts) + 1, dtype=np.int64)
        for i, text in enumerate(texts):
            before = len(flat)
            for word in split_words(text):
                found = cache.get(word)
                flat.extend(found if found is not None else miss(word))
                if cap is not None and len(flat) - before >= cap:
                    del flat[before + cap:]
                    break
            starts[i + 1] = len(flat)
        return np.array(flat, dtype=np.int32), starts
