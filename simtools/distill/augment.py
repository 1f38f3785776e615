"""Perturbed copies of real texts: the synthetic half of a model-compression transfer set.

Bucilua, Caruana and Niculescu-Mizil (2006) grew the training set with examples close to the
real ones (their MUNGE swaps attribute values between near neighbours) and let the teacher label
them. For text the analogous moves are word dropout, swapping neighbouring words, substituting a
word by one drawn from the corpus, and resampling an n-gram from another text. The copies need
not be fluent: what matters is that they lie near the data and the teacher labels them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["perturb", "perturbed_copies"]


def perturb(words: list[str], rng: np.random.Generator, vocab: Sequence[str],
            donors: Sequence[list[str]], *, dropout: float = 0.1, swap: float = 0.1,
            substitute: float = 0.1, resample: float = 0.3) -> list[str]:
    """One perturbed copy of a tokenised text (a list of words); never empty."""
    out = list(words)
    if not out:
        return out
    # substitutions: a word replaced by a corpus word, drawn with its corpus frequency
    if vocab:
        hit = np.flatnonzero(rng.random(len(out)) < substitute)
        for i, j in zip(hit, rng.integers(0, len(vocab), len(hit)), strict=True):
            out[i] = vocab[j]
    # swaps of neighbouring words
    for i in np.flatnonzero(rng.random(max(len(out) - 1, 0)) < swap):
        out[i], out[i + 1] = out[i + 1], out[i]
    # n-gram resampling: a span of 1-3 words replaced by a span of another text
    if donors and rng.random() < resample:
        donor = donors[int(rng.integers(0, len(donors)))]
        if donor:
            n = int(rng.integers(1, 4))
            a = int(rng.integers(0, max(len(out) - n, 0) + 1))
            b = int(rng.integers(0, max(len(donor) - n, 0) + 1))
            out[a: a + n] = donor[b: b + n]
    # word dropout last, keeping at least one word
    keep = rng.random(len(out)) >= dropout
    if not keep.any():
        keep[int(rng.integers(0, len(out)))] = True
    return [w for w, k in zip(out, keep, strict=True) if k]


def perturbed_copies(texts: Sequence[str], copies: int, *, seed: int = 0,
                     **rates: float) -> tuple[list[str], np.ndarray]:
    """``copies`` perturbed copies of every text; returns the copies and, for each copy, the
    index of the text it came from (int64). Texts are split on whitespace."""
    rng = np.random.default_rng(seed)
    tokenised = [t.split() for t in texts]
    # the vocabulary with repetitions, so that uniform draws follow the corpus frequencies;
    # capped so that long documents do not make it huge
    flat = [w for words in tokenised for w in words]
    if len(flat) > 200_000:
        flat = [flat[i] for i in rng.choice(len(flat), 200_000, replace=False)]
    out: list[str] = []
    source: list[int] = []
    for _ in range(copies):
        for i, words in enumerate(tokenised):
            new = perturb(words, rng, flat, tokenised, **rates)
            if new:
                out.append(" ".join(new))
                source.append(i)
    return out, np.asarray(source, dtype=np.int64)
