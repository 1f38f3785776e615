"""The vectorised n-gram hasher against a plain-Python reference, and its edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from simtools.student import featurizer as H
from simtools.student.featurizer import HashingFeaturizer

MASK = (1 << 64) - 1


def _reference(featurizer: HashingFeaturizer, text: str) -> list[list[int]]:
    """Bucket ids of one text, kind by kind, computed one character at a time."""
    text = text[: featurizer.max_chars].lower()
    cps = [ord(c) for c in text]
    classes = [int(H.char_classes(np.array([c], dtype=np.uint32))[0]) for c in cps]

    def poly(codes: list[int]) -> int:
        h = 0
        for j, c in enumerate(codes):
            h = (h + c * pow(int(H._BASE), j, 1 << 64)) & MASK
        return h

    def bucket(h: int, salt: int) -> int:
        x = ((h + salt) & MASK) ^ int(featurizer._seed_mix)
        x ^= x >> 29
        x = (x * int(H._MIX)) & MASK
        return x >> int(featurizer._shift)

    tokens: list[list[int]] = []
    current: list[int] = []
    for c, k in zip(cps, classes, strict=True):
        if k == H.WORD:
            current.append(c)
            continue
        if current:
            tokens.append(current)
            current = []
        if k == H.SYMBOL:
            tokens.append([c])
    if current:
        tokens.append(current)
    hashes = [poly(t) for t in tokens]
    out = [[bucket(h, int(H._SALT_TOKEN)) for h in hashes]]
    if featurizer.word_ngrams == 2:
        out.append([bucket((a * int(H._PAIR) + b) & MASK, int(H._SALT_BIGRAM))
                    for a, b in zip(hashes, hashes[1:])])
    lo, hi = featurizer.char_ngrams
    # words are runs of word characters; their n-grams are those of '<word>'
    words, run = [], []
    for c, k in zip(cps + [0], classes + [H.SEPARATOR], strict=True):
        if k == H.WORD:
            run.append(c)
        elif run:
            words.append(run)
            run = []
    for n in range(lo, hi + 1) if lo else []:
        ids = []
        for word in words:
            padded = [H._BOUNDARY, *word, H._BOUNDARY]
            for i in range(len(padded) - n + 1):
                h = 0
                for c in padded[i: i + n]:
                    h = (h * int(H._BASE) + c) & MASK
                ids.append(bucket(h, int(H._SALT_CHAR[n])))
        out.append(ids)
    return out


def _per_text(features: H.Features, i: int) -> list[list[int]]:
    return [ids[s[i]: s[i + 1]].tolist() for ids, s in zip(features.ids, features.starts, strict=True)]


TEXTS = [
    "Hello, World! hello again",
    "I can't believe it's 2024 #blessed @user",
    "안녕하세요 세계 한국어 문장",
    "😂😂🔥",
    "   ",
    "",
    "a",
    "naïve café — “quoted” text… ok?",
    "tab\tand\nnewline",
]


@pytest.mark.parametrize("word_ngrams,char_ngrams", [(2, (3, 5)), (1, (0, 0)), (2, (4, 4))])
def test_matches_reference(word_ngrams: int, char_ngrams: tuple[int, int]) -> None:
    featurizer = HashingFeaturizer(buckets=1 << 12, word_ngrams=word_ngrams, char_ngrams=char_ngrams)
    features = featurizer.transform(TEXTS)
    for i, text in enumerate(TEXTS):
        assert _per_text(features, i) == _reference(featurizer, text), text


def test_batch_invariant() -> None:
    featurizer = HashingFeaturizer(buckets=1 << 10)
    together = featurizer.transform(TEXTS)
    for i, text in enumerate(TEXTS):
        assert _per_text(together, i) == _per_text(featurizer.transform([text]), 0)


def test_scripts_and_emoji_have_features() -> None:
    featurizer = HashingFeaturizer(buckets=1 << 10)
    counts = featurizer.transform(["안녕하세요", "😂🔥", "   ", ""]).counts
    assert counts[0] > 0 and counts[1] >= 3  # two emoji tokens and their bigram
    assert counts[2] == 0 and counts[3] == 0


def test_lowercase_that_changes_length() -> None:
    featurizer = HashingFeaturizer(buckets=1 << 10)
    features = featurizer.transform(["İstanbul city", "next text"])
    assert _per_text(features, 1) == _per_text(featurizer.transform(["next text"]), 0)


def test_bags_layout() -> None:
    featurizer = HashingFeaturizer(buckets=1 << 10)
    features = featurizer.transform(TEXTS)
    ids, offsets = features.bags()
    counts = features.counts
    for i in range(len(TEXTS)):
        expected = sorted(sum(_per_text(features, i), []))
        assert sorted(ids[offsets[i]: offsets[i] + counts[i]].tolist()) == expected


def test_params_round_trip() -> None:
    featurizer = HashingFeaturizer(buckets=1 << 8, char_ngrams=(3, 4), word_ngrams=1, seed=3)
    again = HashingFeaturizer.from_params(featurizer.params())
    a, b = featurizer.transform(TEXTS), again.transform(TEXTS)
    assert all(np.array_equal(x, y) for x, y in zip(a.ids, b.ids, strict=True))


def test_seed_changes_buckets() -> None:
    a = HashingFeaturizer(buckets=1 << 16, seed=0).transform(["some words here"]).ids[0]
    b = HashingFeaturizer(buckets=1 << 16, seed=1).transform(["some words here"]).ids[0]
    assert not np.array_equal(a, b)


def test_rejects_buckets_not_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        HashingFeaturizer(buckets=1000)


def test_rejects_bad_char_ngrams() -> None:
    with pytest.raises(ValueError, match="char_ngrams"):
        HashingFeaturizer(char_ngrams=(2, 5))


def test_rejects_bad_word_ngrams() -> None:
    with pytest.raises(ValueError, match="word_ngrams"):
        HashingFeaturizer(word_ngrams=3)


def test_rejects_bad_max_chars() -> None:
    with pytest.raises(ValueError, match="max_chars"):
        HashingFeaturizer(max_chars=0)
