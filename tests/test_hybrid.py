"""Hybrid search: fused rankings against a brute-force fusion of full rankings, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from simtools import Index
from simtools.data import Document
from simtools.errors import InputError
from simtools.index.hybrid import HybridIndex, build_hybrid_index, load_searchable

DOCS = [
    "The cat sat on the mat with another cat",
    "Dogs and cats are pets; a dog chases a cat",
    "Tennis is played on grass, clay and hard courts",
    "Wimbledon is a tennis tournament played on grass in London",
    "The stock market fell as investors sold shares",
    "Shares of the company rose after the market opened",
    "A dog and a cat can be friends",
    "Football is played on grass too, with a ball",
]
QUERIES = ["cat and dog", "tennis on grass", "market shares", "a kitten purring"]


@pytest.fixture(scope="module")
def pair() -> tuple[Index, Index]:
    lexical, dense = Index("bm25"), Index("student")
    lexical.add_texts(DOCS)
    dense.add_texts(DOCS)
    return lexical, dense


def full_ranking(index: Index, query: str) -> tuple[list[int], list[float]]:
    """Every document's score by brute force, best first; lexical: only those sharing a term."""
    q = (index.encoder.encode_queries([query]) if index.sparse else index.encode([query]))
    X = index.stored_vectors()
    scores = np.asarray((X @ q.T).todense()).ravel() if index.sparse else X @ q[0]
    order = sorted(range(len(DOCS)), key=lambda i: (-scores[i], i))
    if index.sparse:
        order = [i for i in order if scores[i] > 0]
    return order, [float(scores[i]) for i in order]


def reference(pair: tuple[Index, Index], query: str, fusion: str, weight: float) -> list[int]:
    (lex_order, lex_scores), (den_order, den_scores) = (full_ranking(i, query) for i in pair)
    fused: dict[int, float] = {}
    for order, scores, share in ((lex_order, lex_scores, weight),
                                 (den_order, den_scores, 1 - weight)):
        for rank, (doc, score) in enumerate(zip(order, scores), 1):
            if fusion == "rrf":
                gain = 2 * share / (60 + rank)
            else:
                span = scores[0] - scores[-1]
                gain = share * ((score - scores[-1]) / span if span > 0 else 1.0)
            fused[doc] = fused.get(doc, 0.0) + gain
    lex_rank = {d: r for r, d in enumerate(lex_order)}
    return sorted(fused, key=lambda d: (-fused[d], lex_rank.get(d, len(DOCS)), d))


@pytest.mark.parametrize("fusion, weight", [("rrf", 0.5), ("rrf", 0.8), ("scores", 0.5),
                                            ("scores", 0.3)])
def test_fusion_matches_brute_force(pair, fusion, weight):
    hybrid = HybridIndex(*pair, fusion=fusion, weight=weight, depth=len(DOCS))
    for query, hits in zip(QUERIES, hybrid.search(QUERIES, k=5)):
        assert [int(h.id) for h in hits] == reference(pair, query, fusion, weight)[:5]
    assert hybrid.metric == ("rrf" if fusion == "rrf" else "fused_scores")


def test_query_without_known_word_is_ranked_by_the_dense_index(pair):
    hybrid = HybridIndex(*pair)
    results, known = hybrid.search_known(["zzqx purring", "   "], k=3)
    assert known.tolist() == [True, False] and results[1] is None
    dense_only = pair[1].search(["zzqx purring"], k=3)[0]
    assert [h.id for h in results[0]] == [h.id for h in dense_only]
    with pytest.raises(InputError, match="has no token either encoder knows"):
        hybrid.search(["   "], k=3)


def test_hybrid_needs_dense_vectors(pair):
    words = Index("tfidf")
    words.add_texts(DOCS)
    with pytest.raises(InputError, match="has no dense vectors"):
        HybridIndex(pair[0], words)
    with pytest.raises(InputError, match="lexical index holds dense vectors"):
        HybridIndex(pair[1], pair[1])
    other = Index("student")
    other.add_texts(DOCS[:3])
    with pytest.raises(InputError, match="different documents"):
        HybridIndex(pair[0], other)


@pytest.mark.parametrize("settings, match", [
    ({"fusion": "max"}, "fusion"), ({"rrf_k": -1}, "rrf_k"), ({"weight": 1.5}, "weight"),
    ({"depth": 0}, "depth"),
])
def test_bad_settings(pair, settings, match):
    with pytest.raises(InputError, match=match):
        HybridIndex(*pair, **settings)


def test_build_save_load(tmp_path):
    docs = [Document(text, f"doc {i}") for i, text in enumerate(DOCS)] + [Document("!!", "bang")]
    skipped: list[Document] = []
    hybrid = build_hybrid_index(docs, on_skip=skipped.append, weight=0.7)
    assert len(hybrid) == len(DOCS) and [d.title for d in skipped] == ["bang"]
    hybrid.save(tmp_path / "h")
    loaded = load_searchable(tmp_path / "h")
    assert isinstance(loaded, HybridIndex) and loaded.weight == 0.7
    before, after = hybrid.search(QUERIES, k=4), loaded.search(QUERIES, k=4)
    assert [[(h.id, h.title) for h in r] for r in before] == [[(h.id, h.title) for h in r]
                                                              for r in after]
    pair_index = Index("bm25")
    pair_index.add_texts(DOCS)
    pair_index.save(tmp_path / "plain")
    assert isinstance(load_searchable(tmp_path / "plain"), Index)
    added = loaded.add_texts(["a cat on grass"])
    assert added == [str(len(DOCS))] and loaded.dense.ids == loaded.lexical.ids


# -- the CLI: index files --encoder hybrid, search --ranking ------------------------------------
def _cli(*args: str):
    from click.testing import CliRunner
    from simtools_cli.main import main

    return CliRunner().invoke(main, list(args))


def test_cli_builds_and_searches_a_hybrid_index(tmp_path):
    import json

    folder = tmp_path / "docs"
    folder.mkdir()
    for i, text in enumerate(DOCS):
        (folder / f"doc{i}.txt").write_text(text, encoding="utf-8")
    built = _cli("index", "files", str(folder), "--out", str(tmp_path / "h"), "--encoder",
                 "hybrid", "--json")
    assert built.exit_code == 0, built.output
    assert json.loads(built.stdout)["metric"] == "fused_scores"
    found = _cli("search", "tennis on grass", "zzqx purring", "--index", str(tmp_path / "h"),
                 "--json", "-k", "3")
    assert found.exit_code == 0, found.output
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert [r["metric"] for r in rows] == ["fused_scores", "fused_scores"]
    assert rows[0]["neighbours"][0]["title"] in {"doc2.txt", "doc3.txt"}
    assert len(rows[1]["neighbours"]) == 3  # no known word: the dense half still answers
    lexical = _cli("search", "tennis", "--index", str(tmp_path / "h"), "--ranking", "lexical",
                   "--json")
    row = json.loads(lexical.stdout)
    assert row["metric"] == "bm25" and {n["title"] for n in row["neighbours"]} == {
        "doc2.txt", "doc3.txt"}


def test_cli_hybrid_asked_of_a_lexical_index_is_one_line(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(DOCS[0], encoding="utf-8")
    (folder / "b.txt").write_text(DOCS[2], encoding="utf-8")
    assert _cli("index", "files", str(folder), "--out", str(tmp_path / "i")).exit_code == 0
    result = _cli("search", "cat", "--index", str(tmp_path / "i"), "--ranking", "hybrid")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: this index has no dense vectors to fuse; build one with `simtools index files "
        "... --encoder hybrid`, or leave --ranking out"]
    refused = _cli("index", "files", str(folder), "--out", str(tmp_path / "j"), "--encoder",
                   "hybrid", "--metric", "euclidean")
    assert refused.exit_code == 2 and "--encoder hybrid fixes its metrics" in refused.output
