"""Search quality on your own queries: MRR@10, recall@1/10, nDCG@10 and queries/s per index.

A saved index is scored as it is; with encoder and metric lists, an index is built from the
same documents for every combination (``hybrid[:student|:minilm]`` too) and each is scored
the same way. The scores come from :func:`simtools.evaluation.retrieval_scores`, the code that
``benchmarks/bench_retrieval.py`` scores with. A query with no relevant document among an
index's documents is left out of that index's scores (and counted); a query the index cannot
place (no token its encoder knows) has found nothing, a miss.

A rebuilt index keeps each document's own id (a Wikipedia page id) and numbers the others by
their position from 0, as ``simtools index files`` numbers them when it skips none: refer to
documents by title where an id could differ. ``max_docs`` samples the documents of the rebuilt
indexes (the relevant ones always kept); the saved index, which holds them all, is then left
out, since its scores would not be comparable.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data import Document
from ..errors import InputError
from ..evaluation import RETRIEVAL_SCORES, retrieval_scores
from ..metrics import Metric
from .common import (
    Progress,
    Skipped,
    check_encoders,
    check_max_docs,
    check_metrics,
    check_seed,
    combinations,
    median_seconds,
    sample_positions,
)
from .queries import QuerySet, Relevance, resolve_relevance

__all__ = ["SearchReport", "SearchResult", "benchmark_search", "rank", "read_corpus"]

logger = logging.getLogger(__name__)

#: The depth every query is searched to: the deepest cutoff of the scores.
DEPTH = 10


@dataclass
class SearchResult:
    """One index's scores on the queries."""

    name: str  # "saved index" or "ENCODER + METRIC"
    encoder: str
    metric: str
    documents: int
    queries: int  # the queries scored (those with a relevant document in this index)
    scores: dict[str, float]
    queries_per_s: float
    build_s: float | None = None  # None for the saved index
    unplaced: int = 0  # scored queries the index could not place (no token it knows)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SearchReport:
    """Every index's scores, and what was left out."""

    queries: int  # the queries in the file
    results: list[SearchResult]
    skipped: list[Skipped] = field(default_factory=list)
    unmatched: int = 0  # references (of the first collection) that match no document
    unmatched_queries: int = 0  # queries left out: none of their documents is there
    sampled_from: int | None = None
    documents: int | None = None  # documents of the rebuilt indexes
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> list[SearchResult]:
        """The indexes with the highest MRR@10 (several when they tie)."""
        if not self.results:
            return []
        top = max(r.scores["mrr@10"] for r in self.results)
        return [r for r in self.results if r.scores["mrr@10"] >= top - 1e-12]

    def to_dict(self) -> dict[str, Any]:
        best = {r.name for r in self.best}
        return {"queries": self.queries, "scores": list(RETRIEVAL_SCORES),
                "results": [{**r.to_dict(), "best": r.name in best} for r in self.results],
                "best": sorted(best), "unmatched_references": self.unmatched,
                "unmatched_queries": self.unmatched_queries, "documents": self.documents,
                "sampled_from": self.sampled_from,
                "skipped": [s.to_dict() for s in self.skipped], "notes": self.notes}


def read_corpus(path: str | os.PathLike[str], *, encoding: str | None = None) -> list[Document]:
    """The documents of ``path``: what :func:`simtools.data.read_documents` reads, or the
    articles of a Wikipedia dump (``.xml.bz2`` or ``.xml``; ids: page ids)."""
    name = os.fspath(path)
    if name.endswith((".xml.bz2", ".xml")):
        from ..wiki.build import LabelFrom, page_document
        from ..wiki.dump import iter_dump

        return [page_document(page, LabelFrom.NONE) for page in iter_dump(Path(name))]
    from ..data import read_documents

    return list(read_documents(name, encoding=encoding))


def rank(index: Any, texts: Sequence[str], k: int = DEPTH) -> tuple[list[list[str]], int]:
    """The ids each query finds, best first, and how many queries the index could not place
    (an empty ranking). ``index``: an :class:`~simtools.index.Index` or a hybrid index."""
    from ..index.build import encode_known

    k = min(k, len(index))
    if hasattr(index, "search_known"):
        rows, known = index.search_known(list(texts), k=k)
        ranked = [[n.id for n in row] if row is not None else [] for row in rows]
        return ranked, int((~known).sum())
    vectors, known = encode_known(index, list(texts), what="query")
    found = iter(index.search(vectors, k=k) if vectors is not None else [])
    return [[n.id for n in next(found)] if ok else [] for ok in known], int((~known).sum())


def _score(index: Any, name: str, encoder: str, metric: str, queries: QuerySet,
           relevance: Relevance, repeat: int, build_s: float | None) -> SearchResult:
    keep = relevance.scorable
    texts = [queries.texts[i] for i in keep]
    ranked, unplaced = rank(index, texts)
    seconds = median_seconds(lambda: rank(index, texts), repeat=repeat, warmup=0)
    scores = retrieval_scores(ranked, [relevance.relevant[i] for i in keep])
    return SearchResult(name, encoder, metric, len(index), len(keep), scores,
                        len(texts) / max(seconds, 1e-12), build_s, unplaced)


def _titles(index: Any) -> list[str | None]:
    return list(getattr(index, "titles", None) or index.lexical.titles)


def _with_ids(documents: Sequence[Document]) -> list[Document]:
    """Every document with an id: its own, or its position."""
    return [d if d.id is not None else dataclasses.replace(d, id=str(i))
            for i, d in enumerate(documents)]


def benchmark_search(queries: QuerySet, *, index: Any = None,
                     documents: Sequence[Document] | None = None,
                     encoders: str | Sequence[str] | None = None,
                     metrics: str | Sequence[str | Metric] | None = None,
                     max_docs: int | None = None, seed: int = 0, repeat: int = 3,
                     progress: Progress | None = None) -> SearchReport:
    """Score a saved ``index`` and/or an index per encoder x metric built from ``documents``.

    ``encoders`` None with ``documents``: bm25 (tfidf when ``metrics`` are given), as ``simtools
    index files`` picks; ``metrics`` None: each encoder's own (inner product for bm25, else
    cosine). Raises InputError when no query's relevant documents are in the index, or when
    there is nothing to score.
    """
    if index is None and documents is None:
        raise InputError("nothing to score: give index (a saved index) or documents to build "
                         "indexes from, or both")
    if documents is None and (encoders is not None or metrics is not None):
        raise InputError("encoders and metrics rebuild the index from its documents, which an "
                         "index does not keep; give documents (what the index was built from)")
    seed, max_docs = check_seed(seed), check_max_docs(max_docs)
    report = SearchReport(len(queries), [])
    plan = _plan(encoders, metrics, report) if documents is not None else []
    steps = len(plan) + (index is not None)
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps)

    docs, relevance = None, None
    if documents is not None:
        docs, relevance = _sample(_with_ids(documents), queries, max_docs, seed, report)
    if index is not None and report.sampled_from is not None:
        report.notes.append("the saved index holds every document, the rebuilt ones the "
                            "sample: it is left out (run without max_docs to score it)")
        index = None
        steps -= 1
    if index is not None:
        own = resolve_relevance(queries, index.ids, _titles(index))
        relevance = own if relevance is None else relevance
        report.results.append(_score(index, "saved index", _encoder_name(index),
                                     _metric_name(index), queries, own, repeat, None))
        advance()
    assert relevance is not None
    _count_unmatched(report, relevance)
    for encoder, metric in plan:
        assert docs is not None
        result = _rebuilt(encoder, metric, docs, queries, relevance, repeat, report)
        if result is not None:
            report.results.append(result)
        advance()
    if not report.results:
        raise InputError("no index could be scored: every encoder was skipped ("
                         + "; ".join(f"{s.what}: {s.reason}" for s in report.skipped) + ")")
    return report


def _plan(encoders: str | Sequence[str] | None, metrics: str | Sequence[str | Metric] | None,
          report: SearchReport) -> list[tuple[str, Metric | None]]:
    """The (encoder, metric) pairs to build; metric None: the encoder's own."""
    names = check_encoders(encoders if encoders is not None else
                           ("tfidf" if metrics is not None else "bm25"), hybrid=True)
    hybrids = [n for n in names if n.partition(":")[0] == "hybrid"]
    others = [n for n in names if n not in hybrids]
    if metrics is None:
        plan: list[tuple[str, Metric | None]] = [(n, None) for n in others]
    else:
        pairs, skipped = combinations(others, check_metrics(metrics))
        plan, report.skipped = list(pairs), skipped
        if hybrids:
            report.notes.append("a hybrid index fixes its own metrics (BM25 inner product, "
                                "cosine for the dense half): one row each, whatever metrics say")
    return plan + [(n, None) for n in hybrids]


def _sample(documents: list[Document], queries: QuerySet, max_docs: int | None, seed: int,
            report: SearchReport) -> tuple[list[Document], Relevance]:
    relevance = resolve_relevance(queries, [d.id or "" for d in documents],
                                  [d.title for d in documents])
    wanted = set().union(*relevance.relevant)
    keep = [i for i, d in enumerate(documents) if d.id in wanted]
    picked = sample_positions(len(documents), max_docs, seed, keep)
    if picked is not None:
        report.sampled_from = len(documents)
        documents = [documents[i] for i in picked]
        report.notes.append(f"sampled {len(documents):,} of {report.sampled_from:,} documents "
                            f"(max_docs={max_docs}, seed {seed}), every relevant one kept")
    report.documents = len(documents)
    return documents, relevance


def _count_unmatched(report: SearchReport, relevance: Relevance) -> None:
    report.unmatched = len(relevance.unmatched)
    report.unmatched_queries = report.queries - len(relevance.scorable)
    if relevance.unmatched:
        report.notes.append(
            f"{len(relevance.unmatched)} relevant reference(s) match no document (e.g. "
            f"{relevance.unmatched[0]!r}); {report.unmatched_queries} of {report.queries} "
            "queries have none left and are not scored")


def _rebuilt(encoder: str, metric: Metric | None, documents: list[Document], queries: QuerySet,
             relevance: Relevance, repeat: int, report: SearchReport) -> SearchResult | None:
    """Build one combination's index and score it; None (and a Skipped) when its extra is
    missing."""
    skipped: list[Document] = []
    start = time.perf_counter()
    try:
        index = _build(encoder, metric, documents, skipped.append)
    except ImportError as e:
        report.skipped.append(Skipped(encoder, str(e)))
        return None
    build_s = time.perf_counter() - start
    if skipped:
        report.notes.append(f"{encoder}: {len(skipped)} document(s) with no token it knows "
                            "are left out of its index")
    name = _metric_name(index)
    return _score(index, f"{encoder} + {name}", encoder, name, queries, relevance, repeat,
                  build_s)


def _build(encoder: str, metric: Metric | None, documents: list[Document], on_skip: Any) -> Any:
    kind, _, dense = encoder.partition(":")
    if kind == "hybrid":
        from ..index.hybrid import build_hybrid_index

        return build_hybrid_index(documents, lexical="bm25", dense=dense or "student",
                                  on_skip=on_skip)
    from ..encoders import make_encoder
    from ..index.build import build_index

    vectoriser = make_encoder(encoder)
    own = getattr(vectoriser, "scoring_metric", None)
    chosen = metric.value if metric is not None else (own or "cosine")
    return build_index(documents, encoder=vectoriser, metric=chosen, on_skip=on_skip)


def _encoder_name(index: Any) -> str:
    """What a saved index encodes with, by the name ``make_encoder`` knows it (roughly)."""
    if hasattr(index, "lexical"):
        return "hybrid"
    encoder = index.encoder
    name = str(getattr(encoder, "type_name", "") or "vectors")
    if name == "count":
        kind = str(getattr(getattr(encoder, "kind", ""), "value", encoder.kind))
        analyzer = str(getattr(getattr(encoder, "analyzer", ""), "value", encoder.analyzer))
        return "char" if analyzer.startswith("char") else kind
    return "minilm" if name == "teacher" else name


def _metric_name(index: Any) -> str:
    metric = index.metric
    return metric.value if isinstance(metric, Metric) else str(metric)
