"""simtools.benchmarking: cross-validated k-NN (checked against scikit-learn on the same folds),
search scores (against the evaluation functions on the index's own results), the ANN sweep
(its ground truth against a NumPy brute force), every validation branch, and the plots."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from simtools import Index
from simtools.benchmarking import (
    benchmark_ann,
    benchmark_metrics,
    benchmark_search,
    index_vectors,
    load_labelled_texts,
    read_queries,
    stratified_folds,
)
from simtools.benchmarking.ann import Sweep, check_recall, exact_neighbours, fastest
from simtools.benchmarking.common import check_encoders, check_metrics, sample_positions
from simtools.benchmarking.queries import QuerySet, resolve_relevance
from simtools.data import Document
from simtools.errors import InputError
from simtools.evaluation import mrr_at_k, ndcg_at_k, recall_at_k, retrieval_scores

ROOT = Path(__file__).resolve().parents[1]
HAS_FAISS = importlib.util.find_spec("faiss") is not None
TOPICS = {
    "sport": ["goal", "match", "team", "player", "ball", "score", "league", "cup", "final", "coach", "striker", "win"],
    "tech": ["software", "computer", "chip", "data", "network", "model", "code", "server", "cloud", "app", "robot"],
    "food": ["bread", "dough", "oven", "flour", "recipe", "bake", "salt", "butter", "sugar", "cheese", "soup", "meal"],
}
COMMON = ["the", "a", "of", "and", "to", "in", "is", "on", "for", "with", "it", "as", "at", "by", "from", "this", "that"]


def labelled(n_per_class: int = 12, seed: int = 0) -> tuple[list[str], list[str]]:
    """Seeded texts of three topics, of very different lengths (so ties are unlikely)."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, words in TOPICS.items():
        for _ in range(n_per_class):
            n = int(rng.integers(6, 60))
            pool = words + COMMON
            weights = np.array([3.0] * len(words) + [1.0] * len(COMMON))
            texts.append(" ".join(rng.choice(pool, n, p=weights / weights.sum())))
            labels.append(label)
    return texts, labels


# -- metrics ----------------------------------------------------------------------------------
def test_cross_validated_accuracy_equals_scikit_learn_on_the_same_folds() -> None:
    """Cosine and normalised Euclidean: raw Euclidean distances of counts are square roots of
    integers, which tie exactly, and the two libraries break such ties differently."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    texts, labels = labelled()
    report = benchmark_metrics(texts, labels, encoders="count",
                               metrics="cosine,normalized_euclidean", folds=4, k=3, seed=1)
    folds = stratified_folds(labels, 4, 1)
    for result in report.results:
        unit = [Normalizer()] if result.metric == "normalized_euclidean" else []
        model = make_pipeline(CountVectorizer(), *unit, KNeighborsClassifier(
            3, metric="cosine" if not unit else "euclidean", algorithm="brute"))
        expected = cross_val_score(model, np.array(texts, dtype=object), np.array(labels),
                                   cv=folds)
        np.testing.assert_allclose(result.accuracy, expected)
        assert result.macro_f1_mean <= 1 and len(result.build_s) == 4
    assert report.documents == 36 and report.classes == ["food", "sport", "tech"]
    assert report.to_dict()["results"][0]["accuracy_folds"] == report.results[0].accuracy


def test_every_metric_and_encoder_and_the_best_marked() -> None:
    texts, labels = labelled(8)
    report = benchmark_metrics(texts, labels, encoders=["count", "tfidf", "bm25"], folds=3, k=3)
    pairs = [(r.encoder, r.metric) for r in report.results]
    assert ("count", "inner_product") in pairs and ("tfidf", "normalized_euclidean") in pairs
    assert [m for e, m in pairs if e == "bm25"] == ["inner_product"]  # bm25: its own metric only
    assert report.skipped[0].what == "bm25 + cosine, euclidean, normalized_euclidean"
    top = max(r.accuracy_mean for r in report.results)
    assert report.best and all(r.accuracy_mean == top for r in report.best)
    # cosine and normalised Euclidean rank alike: the same accuracy, fold by fold
    by = {(r.encoder, r.metric): r for r in report.results}
    assert by["count", "cosine"].accuracy == by["count", "normalized_euclidean"].accuracy
    marked = [r for r in report.to_dict()["results"] if r["best"]]
    assert len(marked) == len(report.best)


def test_a_pretrained_encoder_encodes_once_and_held_out_texts_it_cannot_place_count_wrong() -> None:
    texts, labels = labelled(6)
    report = benchmark_metrics(texts, labels, encoders="student", metrics="cosine", folds=3)
    assert len(report.results[0].accuracy) == 3
    # texts of words no training fold holds: an encoder fitted on the others cannot place them
    texts += ["qwxz vbnm", "plkj hgfd", "zxcv asdf"]
    labels += ["sport", "tech", "food"]
    report = benchmark_metrics(texts, labels, encoders="count", metrics="cosine", folds=3)
    assert report.results[0].unplaced == 3


def test_sampling_is_seeded_and_said() -> None:
    texts, labels = labelled()
    one = benchmark_metrics(texts, labels, folds=3, metrics="cosine", max_docs=20, seed=4)
    two = benchmark_metrics(texts, labels, folds=3, metrics="cosine", max_docs=20, seed=4)
    assert one.documents == 20 and one.sampled_from == 36
    assert one.results[0].accuracy == two.results[0].accuracy
    assert benchmark_metrics(texts, labels, folds=3, max_docs=100).sampled_from is None
    picked = sample_positions(10, 4, 0, keep=[9])
    assert picked is not None and len(picked) == 4 and 9 in picked
    assert sample_positions(10, 10, 0) is None


def test_an_encoder_whose_extra_is_missing_is_skipped_with_its_reason(monkeypatch) -> None:
    import simtools.encoders as encoders

    real = encoders.make_encoder

    def fake(name: str, **params):
        if name == "minilm":
            raise ImportError('the teacher encoders need onnxruntime; run: pip install '
                              '"simtools[teacher]"')
        return real(name, **params)

    monkeypatch.setattr(encoders, "make_encoder", fake)
    texts, labels = labelled(6)
    report = benchmark_metrics(texts, labels, encoders="count,minilm", metrics="cosine", folds=3)
    assert [r.encoder for r in report.results] == ["count"]
    assert report.skipped[0].what == "minilm" and "simtools[teacher]" in report.skipped[0].reason


@pytest.mark.parametrize(("texts", "labels", "kwargs", "message"), [
    (["a b", "c d", "e f"], ["x", "x", "x"], {}, r"single class \('x'\)"),
    (["a b", "c d", "e f", "g h"], ["x", "y", "x", "y"], {"folds": 5},
     r"4 documents but folds=5.*use folds=4 or fewer"),
    (["a b", "c d", "e f", "g h", "i j", "k l"], list("xyzxyz"), {"folds": 3},
     r"every class has fewer than folds=3 documents"),
    (["a b", "c d"], ["x", "y"], {"folds": 1}, r"folds must be at least 2"),
    (["a b"], ["x", "y"], {}, r"1 texts but 2 labels"),
    ([], [], {}, r"no texts to benchmark"),
    (["a b", "c d"], ["x", "y"], {"encoders": "word2vec"},
     r"unknown encoder 'word2vec'; valid values are bm25, char, count, hashing, minilm, "
     r"student, tfidf"),
    (["a b", "c d"], ["x", "y"], {"encoders": ""}, r"encoders is empty"),
    (["a b", "c d"], ["x", "y"], {"metrics": "manhattan"},
     r"unknown metric 'manhattan'; valid values are cosine, euclidean"),
    (["a b", "c d"], ["x", "y"], {"k": 0}, r"k must be at least 1"),
    (["a b", "c d"], ["x", "y"], {"max_docs": 0}, r"max_docs must be at least 1"),
])
def test_bad_input_to_the_metrics_benchmark(texts, labels, kwargs, message) -> None:
    with pytest.raises(InputError, match=message):
        benchmark_metrics(texts, labels, **kwargs)


def test_encoder_and_metric_lists() -> None:
    assert check_encoders("count, tfidf,count") == ["count", "tfidf"]
    assert check_encoders("hybrid:minilm,student:my-model", hybrid=True) == [
        "hybrid:minilm", "student:my-model"]
    with pytest.raises(InputError, match="unknown encoder 'hybrid'"):
        check_encoders("hybrid")
    with pytest.raises(InputError, match="unknown encoder 'count:x'"):
        check_encoders("count:x")
    assert [m.value for m in check_metrics(None)] == ["cosine", "euclidean",
                                                       "normalized_euclidean", "inner_product"]
    with pytest.raises(InputError, match="metrics is empty"):
        check_metrics(",")


def test_labelled_texts_pool_every_split(tmp_path) -> None:
    path = tmp_path / "news.csv"
    path.write_text("text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(20)),
                    encoding="utf-8")
    texts, labels = load_labelled_texts(str(path))
    assert sorted(texts) == sorted(f"text number {i}" for i in range(20))
    assert labels.count("a") == 10


def test_the_results_page_quotes_the_metric_lesson_json() -> None:
    from benchmarks import bench_metrics_lesson

    payload = json.loads((ROOT / "benchmarks/results/metrics_lesson.json").read_text())
    table = bench_metrics_lesson.readme_table(payload)
    assert table in (ROOT / "docs/results.md").read_text(encoding="utf-8")


# -- queries and search -----------------------------------------------------------------------
def test_queries_from_tsv_and_jsonl(tmp_path) -> None:
    tsv = tmp_path / "q.tsv"
    tsv.write_text("query\ttitle\na goal\tFootball\na racket\tTennis\nA goal\tTennis\n"
                   "a goal\tFootball\n\n", encoding="utf-8")
    queries = read_queries(tsv)
    assert queries.by == "title" and queries.texts == ["a goal", "a racket", "A goal"]
    assert queries.references == [["Football"], ["Tennis"], ["Tennis"]]
    plain = tmp_path / "p.tsv"
    plain.write_text("a goal\t3\t4\n", encoding="utf-8")
    assert read_queries(plain).by == "relevant" and read_queries(plain).references == [["3", "4"]]
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text('{"query": "a goal", "ids": [1, "2"]}\n{"query": "net", "id": 3}\n',
                     encoding="utf-8")
    queries = read_queries(jsonl)
    assert queries.by == "id" and queries.references == [["1", "2"], ["3"]]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("q.txt", "a\tb\n", r"unsupported queries file type '.txt'"),
    ("q.tsv", "a query without a tab\n", r"q.tsv:1: expected 'query<TAB>relevant id or title'"),
    ("q.tsv", "\n\n", r"holds no queries"),
    ("q.jsonl", "{not json\n", r"q.jsonl:1 is not valid JSON"),
    ("q.jsonl", '{"query": "x"}\n', r"q.jsonl:1 must be an object with a 'query' and a 'relevant'"),
    ("q.jsonl", '{"query": "x", "relevant": [{"a": 1}]}\n', r"must be ids or titles"),
])
def test_bad_queries_files(tmp_path, name, text, message) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_queries(path)


def test_references_match_ids_titles_or_either() -> None:
    ids, titles = ["0", "1", "2"], ["Football", "Tennis", "Tennis"]
    either = resolve_relevance(QuerySet(["q1", "q2"], [["0"], ["Tennis", "Golf"]]), ids, titles)
    assert either.relevant == [{"0"}, {"1", "2"}] and either.unmatched == ["Golf"]
    by_title = resolve_relevance(QuerySet(["q"], [["0", "Football"]], by="title"), ids, titles)
    assert by_title.relevant == [{"0"}] and by_title.unmatched == ["0"]
    with pytest.raises(InputError, match=r"none of the 2 queries' relevant documents is in the "
                                         r"index: all 2 reference\(s\) match no document id "
                                         r"\(e.g. 'Golf'\)"):
        resolve_relevance(QuerySet(["q1", "q2"], [["Golf"], ["Chess"]], by="id"), ids, titles)


@pytest.fixture
def documents(corpus) -> list[Document]:
    return [Document(text, title) for title, text in corpus.items()]


@pytest.fixture
def tour_queries(tweets) -> QuerySet:
    return QuerySet(list(tweets.values()) + ["who won the chess final"],
                    [[title] for title in tweets] + [["Chess"]], by="title")


def test_a_saved_index_scored_as_the_evaluation_functions_score_its_own_results(
        corpus, tweets, tour_queries) -> None:
    index = Index("tfidf")
    index.add_texts(list(corpus.values()), titles=list(corpus))
    report = benchmark_search(tour_queries, index=index, repeat=1)
    (result,) = report.results
    found = [[n.id for n in row] for row in index.search(list(tweets.values()), k=4)]
    wanted = [{index.ids[index.titles.index(t)]} for t in tweets]
    assert result.scores == pytest.approx({"mrr@10": mrr_at_k(found, wanted, 10),
                                           "recall@1": recall_at_k(found, wanted, 1),
                                           "recall@10": recall_at_k(found, wanted, 10),
                                           "ndcg@10": ndcg_at_k(found, wanted, 10)})
    assert result.queries == 3 and report.unmatched_queries == 1 and report.unmatched == 1
    assert "1 relevant reference(s) match no document (e.g. 'Chess')" in report.notes[0]
    assert result.name == "saved index" and result.encoder == "tfidf" and result.build_s is None


def test_an_index_per_encoder_and_metric_from_the_documents(documents, tour_queries) -> None:
    report = benchmark_search(tour_queries, documents=documents, encoders="count,bm25,char",
                              metrics="cosine,euclidean", repeat=1)
    names = [r.name for r in report.results]
    assert names == ["count + cosine", "count + euclidean", "bm25 + inner_product",
                     "char + cosine", "char + euclidean"]
    assert all(r.documents == 4 and r.build_s is not None for r in report.results)
    assert report.best and report.to_dict()["best"] == sorted(r.name for r in report.best)
    default = benchmark_search(tour_queries, documents=documents, repeat=1)
    assert [r.name for r in default.results] == ["bm25 + inner_product"]


def test_sampling_documents_keeps_the_relevant_ones_and_leaves_the_saved_index_out(
        documents, tour_queries) -> None:
    many = documents + [Document(f"filler text number {i} about nothing", f"Filler {i}")
                        for i in range(20)]
    index = Index("tfidf")
    index.add_texts([d.text for d in many], titles=[d.title for d in many])
    report = benchmark_search(tour_queries, index=index, documents=many, encoders="tfidf",
                              max_docs=6, repeat=1)
    assert report.sampled_from == 24 and report.documents == 6
    assert [r.name for r in report.results] == ["tfidf + cosine"]
    assert any("it is left out" in note for note in report.notes)
    assert report.results[0].scores["recall@10"] == 1.0  # every relevant document was kept


def test_search_bad_input(documents, tour_queries) -> None:
    with pytest.raises(InputError, match="nothing to score: give index"):
        benchmark_search(tour_queries)
    with pytest.raises(InputError, match="give documents"):
        benchmark_search(tour_queries, index=Index("count"), encoders="count")
    with pytest.raises(InputError, match="unknown encoder 'hybrid:tfidf'"):
        benchmark_search(tour_queries, documents=documents, encoders="hybrid:tfidf")


def test_retrieval_scores_by_name() -> None:
    ranked, relevant = [["a", "b"], ["c"]], ["b", {"c", "d"}]
    assert retrieval_scores(ranked, relevant, ["mrr@1", "precision@2"]) == {
        "mrr@1": 0.5, "precision@2": 0.5}
    with pytest.raises(InputError, match="unknown score 'map@10'"):
        retrieval_scores(ranked, relevant, ["map@10"])


# -- ANN --------------------------------------------------------------------------------------
def test_exact_ground_truth_is_the_brute_force_top_k(vectors) -> None:
    X = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    truth, qps = exact_neighbours(X[:250], X[250:], 5, "ip", repeat=1)
    reference = np.argsort(-(X[250:] @ X[:250].T), axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(np.sort(truth, axis=1), np.sort(reference, axis=1))
    assert qps > 0


@pytest.mark.skipif(not HAS_FAISS, reason="FAISS (simtools[ann]) is not installed")
def test_the_sweep_and_the_fastest_setting_reaching_the_target(vectors) -> None:
    report = benchmark_ann(vectors, metric="cosine", k=5, recall=0.9, seed=1, repeat=1)
    assert report.queries == 30 and report.database == 270 and report.rows[0].method == "exact"
    methods = {r.method for r in report.rows}
    assert methods == {"exact", "hnsw", "ivf"}
    assert all(0 <= r.recall <= 1 and r.qps > 0 for r in report.rows)
    best = report.fastest
    assert best.recall >= 0.9 and best.qps == max(r.qps for r in report.rows if r.recall >= 0.9)
    ivf = [r for r in report.rows if r.method == "ivf"]
    assert max(r.value for r in ivf) <= ivf[0].options["nlist"]  # nprobe capped at nlist
    payload = report.to_dict()
    assert payload["fastest"] == best.to_dict() and "exact" in payload["fastest_per_method"]
    again = benchmark_ann(vectors, metric="euclidean", k=5, recall=0.9, seed=1, repeat=1,
                          max_docs=100, sweeps=[Sweep("hnsw", "hnsw", "ef_search", (8,))])
    assert again.sampled_from == 300 and again.database + again.queries == 100


def test_without_faiss_exact_search_is_the_answer(vectors, monkeypatch) -> None:
    import simtools.index.faiss as faiss_backends

    def missing(*args, **kwargs):
        raise ImportError("FAISS is needed ...; run: pip install simtools[ann]")

    monkeypatch.setattr(faiss_backends, "make_backend", missing)
    report = benchmark_ann(vectors, k=5, repeat=1)
    assert [r.method for r in report.rows] == ["exact"] and report.fastest.method == "exact"
    assert [s.what for s in report.skipped] == ["hnsw", "ivf"]
    assert "simtools[ann]" in report.skipped[0].reason


@pytest.mark.parametrize("recall", [0, 1.5, -0.1, float("nan")])
def test_a_recall_target_out_of_range(recall) -> None:
    with pytest.raises(InputError, match=r"recall=.* is out of range; give a target in \(0, 1\]"):
        check_recall(recall)


def test_ann_bad_input(vectors) -> None:
    import scipy.sparse as sp

    assert check_recall(1) == 1.0 and fastest([], 0.5) is None
    with pytest.raises(TypeError, match="recall must be a number"):
        check_recall("high")
    with pytest.raises(InputError, match="these are sparse"):
        benchmark_ann(sp.csr_matrix(vectors))
    with pytest.raises(InputError, match="got 1 vector"):
        benchmark_ann(vectors[:1])
    with pytest.raises(InputError, match="queries=300 is too many: 300 vectors leave room"):
        benchmark_ann(vectors, queries=300)


def test_vectors_of_an_index(vectors, corpus) -> None:
    dense = Index(None, metric="euclidean")
    dense.add_vectors(vectors)
    X, metric = index_vectors(dense)
    np.testing.assert_allclose(X, vectors) and None
    assert metric.value == "euclidean"
    sparse = Index("count")
    sparse.add_texts(list(corpus.values()))
    with pytest.raises(InputError, match="holds sparse vectors"):
        index_vectors(sparse)
    if HAS_FAISS:
        hnsw = Index(None, backend="hnsw")
        hnsw.add_vectors(vectors)
        with pytest.raises(InputError, match="served by backend='hnsw', which keeps no vectors"):
            index_vectors(hnsw)


# -- plots ------------------------------------------------------------------------------------
def test_plots_are_written(tmp_path, vectors, documents, tour_queries) -> None:
    pytest.importorskip("matplotlib")
    from simtools.benchmarking.plots import plot_ann, plot_metrics, plot_search

    texts, labels = labelled(6)
    metrics = benchmark_metrics(texts, labels, encoders="count,tfidf", folds=3)
    search = benchmark_search(tour_queries, documents=documents, encoders="count,char", repeat=1)
    ann = benchmark_ann(vectors, k=5, repeat=1, sweeps=[])
    for plot, report in ((plot_metrics, metrics), (plot_search, search), (plot_ann, ann)):
        path = plot(report, tmp_path / f"{plot.__name__}.png")
        assert path.read_bytes()[:4] == b"\x89PNG"


def test_a_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path) -> None:
    from simtools.benchmarking.plots import plot_ann

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "simtools\[bench\]"'):
        plot_ann(None, tmp_path / "x.png")
