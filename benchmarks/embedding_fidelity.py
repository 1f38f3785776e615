"""How well the students' compact vectors stand in for the teacher's (MiniLM) vectors.

The embedding student (``--encoder student``: the bundled ``simtools/models/minilm-static``,
or ``--model DIR``) against its peer, model2vec distilled in this run from the same packaged
all-MiniLM-L6-v2 folder (``model2vec.distill``, PCA 256, its other defaults), the teacher, the
classifier student trained with the ``embedding`` method, and lexical controls. Every target
of the issue is measured and printed in one table:

(a) neighbour fidelity: recall@10 of cosine k-NN over each encoder's vectors against k-NN over
    the teacher's 384-d MiniLM vectors, on held-out tweets (the TweetEval validation splits, in
    no transfer set), searched with ``simtools.Index``. The classifier student is trained on the
    pooled TweetEval training tweets (label: the task a tweet comes from); the other controls
    are count and TF-IDF vectors, the second teacher model (paraphrase-MiniLM-L3) and random
    vectors;
(b) the Lee et al. (2005) document-similarity corpus: Pearson r between each encoder's cosine
    similarities and the mean human ratings (upper triangle of the 50 x 50 matrix); count and
    TF-IDF learn their vocabulary and IDF from the 300 background documents;
(c) known-item search on the Wikipedia dump fragment, the queries of
    ``benchmarks/bench_retrieval.py`` (held-out sentences; without their rarest words; with
    words swapped): MRR@10 on the *test* half of the articles, mean of the three forms;
(d) encoding speed on 20,000 real tweets, each encoder in a process of its own
    (``benchmarks/_embedding_speed.py``; the teacher on a sample, as texts/s), and the model's
    size on disk;
(e) building a 100,000-text index (all TweetEval tweets, topped up with perturbed copies):
    embedding-student vectors against teacher vectors (timed on a sample, extrapolated).

Usage (from the repository root)::

    python benchmarks/embedding_fidelity.py            # 1000 training tweets per task
    python benchmarks/embedding_fidelity.py --quick    # 600 per task, smaller teacher sample

Writes ``benchmarks/results/embedding_fidelity[_quick].json`` and ``.png``.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._embedding_peers import (  # noqa: E402
    folder_mb,
    index_speed,
    index_texts,
    model2vec_peer,
    speeds,
)
from benchmarks._embedding_report import (  # noqa: E402
    CLASSIFIER,
    PEER,
    STUDENT,
    TEACHER,
    plot,
    readme_tables,
    targets,
)
from benchmarks._harness import RESULTS, SHARED, parser, print_table, write_json  # noqa: E402
from benchmarks._tweeteval import TASKS, load_task, size_defaults  # noqa: E402
from simtools.evaluation import neighbour_recall  # noqa: E402

logger = logging.getLogger("embedding_fidelity")
LEE = SHARED / "datasets" / "lee"


# --------------------------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------------------------


def cached_embed(model: str, texts: list[str]) -> np.ndarray:
    """A packaged teacher model's vectors, through the shared teacher cache."""
    from simtools.distill.cache import TeacherCache
    from simtools.encoders.teacher import SentenceEncoder

    encoder = SentenceEncoder(model)
    return TeacherCache(None).get_or_compute(encoder.model_id, texts, encoder.embed,
                                             chunk_size=256)


def train_students(train_texts: list[str], train_labels: list[str], val_texts: list[str],
                   val_labels: list[str], args: Any) -> dict[str, Any]:
    """The embedding-distilled student and its hard-label control, one transfer set."""
    from dataclasses import replace

    from simtools.data import LabelledData, Split
    from simtools.distill.config import DistillConfig, Method
    from simtools.distill.teacher import make_teacher
    from simtools.distill.trainer import prepare, train_student

    data = LabelledData(Split(train_texts, train_labels), Split(val_texts, val_labels),
                        labels=sorted(set(train_labels)), source="tweeteval (pooled)")
    base = DistillConfig(methods=(Method.EMBEDDING,), teacher="minilm-lr", seed=args.seed)
    if args.epochs:
        base = replace(base, epochs=args.epochs)
    teacher = make_teacher("minilm-lr", seed=args.seed)
    teacher.fit(train_texts, train_labels)
    prepared = prepare(data, [base], teacher=teacher)
    out = {}
    for name, config in [("embedding", base), ("none", replace(base, methods=(Method.NONE,)))]:
        started = time.perf_counter()
        out[name] = train_student(prepared, config).student
        logger.info("student %s trained in %.0f s", name, time.perf_counter() - started)
    return out


def sparse_encoder(kind: str, fit_texts: list[str]) -> Any:
    from simtools.encoders import make_encoder

    return make_encoder(kind).fit(fit_texts)


# --------------------------------------------------------------------------------------------
# (a) recall@10 against the teacher's neighbours
# --------------------------------------------------------------------------------------------


def neighbours(vectors: Any, k: int) -> np.ndarray:
    """Top-``k`` cosine neighbours of every row among the other rows, via simtools.Index."""
    from simtools import Index
    from simtools.metrics import row_norms

    norms = row_norms(vectors)
    if (norms == 0).any():
        # a text with no known token has no direction: give it a tiny constant direction so it
        # is nobody's neighbour and its own neighbours are arbitrary (counted as misses)
        import scipy.sparse as sp

        fill = np.zeros((vectors.shape[0], vectors.shape[1]), dtype=np.float32)
        fill[norms == 0, 0] = 1e-6
        vectors = (vectors + sp.csr_matrix(fill)) if sp.issparse(vectors) else vectors + fill
    index = Index(None, metric="cosine")
    index.add_vectors(vectors)
    _, positions = index.search_vectors(vectors, k + 1)
    out = np.empty((positions.shape[0], k), dtype=np.int64)
    for i, row in enumerate(positions):
        others = row[row != i]
        out[i] = others[:k]
    return out


# --------------------------------------------------------------------------------------------
# (b) Lee corpus
# --------------------------------------------------------------------------------------------


def read_lee() -> tuple[list[str], list[str], np.ndarray]:
    def lines(name: str) -> list[str]:
        return [ln.strip() for ln in (LEE / name).read_text(encoding="latin-1").splitlines()
                if ln.strip()]

    docs, background = lines("lee.cor"), lines("lee_background.cor")
    human = np.loadtxt(LEE / "similarities0-1.txt")
    if len(docs) != 50 or human.shape != (50, 50):
        raise SystemExit(f"{LEE}: expected 50 documents and a 50 x 50 matrix, got {len(docs)} "
                         f"and {human.shape}")
    return docs, background, human


def pearson_with_humans(vectors: Any, human: np.ndarray) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    from simtools.metrics import pairwise

    sims = np.asarray(pairwise(vectors, metric="cosine_similarity"))
    upper = np.triu_indices(human.shape[0], k=1)
    return {"pearson_r": float(pearsonr(sims[upper], human[upper])[0]),
            "spearman_rho": float(spearmanr(sims[upper], human[upper])[0])}

def known_item(embed: Any) -> dict[str, float]:
    """MRR@10 on the test half of the Wikipedia fragment's known-item queries."""
    from benchmarks._embedding_eval import known_item_mrr

    return known_item_mrr(embed, split="test")



def _arguments() -> Any:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=None,
                   help="embedding student folder (default: the bundled one)")
    p.add_argument("--max-train", type=int, default=None, help="per task; default 1000, quick 600")
    p.add_argument("--max-val", type=int, default=None, help="per task; default 1000, quick 300")
    p.add_argument("--index-size", type=int, default=100_000)
    p.add_argument("--speed-texts", type=int, default=20_000)
    p.add_argument("--teacher-sample", type=int, default=None,
                   help="texts the teacher embeds for the timings (default 400, quick 100)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    size_defaults(args)
    args.teacher_sample = args.teacher_sample or (100 if args.quick else 400)
    return args


def tweets(args: Any) -> tuple[list[str], list[str], list[str], list[str]]:
    """(training tweets, their task, held-out tweets, their task): up to ``--max-train`` and
    ``--max-val`` per task; a held-out tweet is a validation tweet that is no training tweet."""
    train_texts: list[str] = []
    train_labels: list[str] = []
    held_task: dict[str, str] = {}
    for name in TASKS:
        task = load_task(name, max_train=args.max_train, max_val=args.max_val, seed=0)
        train_texts += task.train_texts
        train_labels += [name] * len(task.train_texts)
        for text in task.val_texts:
            held_task.setdefault(text, name)
    seen = set(train_texts)
    held_out = [t for t in held_task if t.strip() and t not in seen]
    return train_texts, train_labels, held_out, [held_task[t] for t in held_out]


def section_recall(embedders: dict[str, Any], train_texts: list[str], held_out: list[str],
                   seed: int) -> list[dict[str, Any]]:
    """(a) recall@10 of each encoder's k-NN against the teacher's, on the held-out tweets."""
    k = 10
    truth = neighbours(cached_embed("minilm", held_out), k)
    rng = np.random.default_rng(seed)
    candidates = [(name, embed(held_out)) for name, embed in embedders.items()] + [
        ("count (fit on training tweets)", sparse_encoder("count", train_texts).encode(held_out)),
        ("TF-IDF (fit on training tweets)", sparse_encoder("tfidf", train_texts).encode(held_out)),
        ("paraphrase-MiniLM-L3 (2nd teacher model)", cached_embed("paraphrase-l3", held_out)),
        ("random vectors (chance)", rng.standard_normal((len(held_out), 64)).astype(np.float32)),
    ]
    rows = [{"encoder": name, "recall_at_10": neighbour_recall(neighbours(v, k), truth)}
            for name, v in candidates]
    print_table(rows, ["encoder", "recall_at_10"],
                title=f"(a) recall@10 against teacher (MiniLM) k-NN, {len(held_out)} held-out "
                      "tweets (cosine)")
    return rows


def section_lee(embedders: dict[str, Any]) -> list[dict[str, Any]]:
    """(b) Pearson r with the mean human ratings of the Lee corpus."""
    docs, background, human = read_lee()
    with_teacher = {**embedders, TEACHER: lambda t: cached_embed("minilm", t),
                    "paraphrase-MiniLM-L3": lambda t: cached_embed("paraphrase-l3", t)}
    candidates = [(name, embed(docs)) for name, embed in with_teacher.items()] + [
        ("count (vocabulary from background)", sparse_encoder("count", background).encode(docs)),
        ("TF-IDF (IDF from background)", sparse_encoder("tfidf", background).encode(docs)),
    ]
    rows = [{"encoder": name, **pearson_with_humans(v, human)} for name, v in candidates]
    print_table(rows, ["encoder", "pearson_r", "spearman_rho"],
                title="(b) Lee corpus: correlation with mean human ratings (1,225 pairs)")
    return rows


def section_known_item(embedders: dict[str, Any]) -> list[dict[str, Any]]:
    """(c) known-item MRR@10 on the test half of the Wikipedia fragment's articles."""
    rows = []
    for name, embed in {**embedders, TEACHER: lambda t: cached_embed("minilm", t)}.items():
        scores = known_item(embed)
        rows.append({"encoder": name, **{kind: scores[kind] for kind in
                                         ("heldout", "rare", "swapped")},
                     "mrr_at_10": scores["mean"], "queries": int(scores["queries"])})
    print_table(rows, ["encoder", "heldout", "rare", "swapped", "mrr_at_10"],
                title="(c) known-item search, Wikipedia fragment, test half (MRR@10)")
    return rows


def overlap(held_out: list[str]) -> dict[str, int]:
    """How many of the test texts are in the embedding student's transfer set (should be 0)."""
    from benchmarks._embedding_data import transfer_set
    from benchmarks._embedding_eval import wiki_known_item

    transfer = set(transfer_set().texts)
    docs, _, _ = read_lee()
    task = wiki_known_item()
    return {"held_out_tweets": sum(t.strip() in transfer for t in held_out),
            "lee_documents": sum(t.strip() in transfer for t in docs),
            "wiki_texts": sum(t["text"].strip() in transfer
                              for t in [*task["docs"], *task["queries"]])}


def main() -> None:
    import tempfile

    from simtools.student.embedding import EmbeddingStudent, default_embedding_path

    args = _arguments()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="embedding_fidelity_"))
    student_dir = args.model or default_embedding_path()
    student = EmbeddingStudent.load(student_dir)
    m2v, m2v_info = model2vec_peer(work / "model2vec")
    train_texts, train_labels, held_out, held_labels = tweets(args)
    logger.info("%d training tweets, %d held-out tweets", len(train_texts), len(held_out))
    classifiers = train_students(train_texts, train_labels, held_out, held_labels, args)
    embedders = {
        STUDENT: student.embed,
        PEER: lambda t: np.asarray(m2v.encode(t, show_progress_bar=False), dtype=np.float32),
        CLASSIFIER: classifiers["embedding"].embed}
    payload: dict[str, Any] = {
        "mode": "quick" if args.quick else "full", "command": " ".join(["python", *sys.argv]),
        "settings": vars(args), "student_model": str(student_dir),
        "student_config": {k: student.config.get(k) for k in ("dim", "vocab_size", "training")},
        "model2vec": m2v_info, "n_train": len(train_texts), "n_held_out": len(held_out)}
    payload["overlap_with_transfer_set"] = overlap(held_out)
    logger.info("test texts also in the transfer set: %s", payload["overlap_with_transfer_set"])
    payload["recall_at_10"] = section_recall(
        {**embedders, "classifier student (hard labels only)": classifiers["none"].embed},
        train_texts, held_out, args.seed)
    payload["lee"] = section_lee(embedders)
    payload["known_item"] = section_known_item(embedders)
    # (d) and (e): speed and size, each encoder in its own process; the 100k-text index build
    texts, real = index_texts(args.index_size, args.seed)
    payload["speed"] = speeds(texts[: args.speed_texts], student_dir, work / "model2vec",
                              args.teacher_sample, args.repeat, args.seed, work)
    payload["size_mb"] = {"student": folder_mb(student_dir),
                          "model2vec": folder_mb(work / "model2vec")}
    print_table([{"encoder": name, **payload["speed"][key]} for name, key in
                 ((STUDENT, "student"), (PEER, "model2vec"), ("teacher", "teacher"))],
                ["encoder", "texts_per_s", "x_teacher", "dim"],
                title=f"(d) encoding speed, {args.speed_texts:,} tweets, each in its own process")
    build = index_speed(student, texts, args.teacher_sample, args.repeat, args.seed)
    payload["index_build"] = {**build, "real_tweets": real}
    print(f"the embedding student builds the {len(texts):,}-text index "
          f"{build['speedup']:,.0f}x faster than the teacher")
    payload["seconds"] = round(time.perf_counter() - started, 1)
    payload["targets"] = targets(payload)
    print_table(payload["targets"], ["measure", "student", "model2vec", "teacher", "target", "met"],
                title="Targets (issue 20)")
    print(f"\nFor the README:\n{readme_tables(payload)}")
    if not args.no_json:
        name = "embedding_fidelity_quick" if args.quick else "embedding_fidelity"
        write_json(name, payload)
        plot(payload, RESULTS / f"{name}.png",
             f"embedding fidelity ({payload['mode']}): students against the teacher (MiniLM)")


if __name__ == "__main__":
    main()
