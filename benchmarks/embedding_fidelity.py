"""How well the distilled student's compact vectors stand in for the teacher's (MiniLM) vectors.

Three measurements, all competitors in one process and one run:

(a) neighbour fidelity: recall@10 of cosine k-NN over each encoder's vectors against k-NN over
    the teacher's 384-d MiniLM vectors, on held-out tweets (the TweetEval validation splits,
    which no model here was trained on), searched with ``simtools.Index``. The student is
    trained with the ``embedding`` method on the pooled TweetEval training tweets (label: the
    task a tweet comes from); the controls are the same student trained on hard labels only,
    count and TF-IDF vectors, the second teacher model (paraphrase-MiniLM-L3) and the teacher's
    own vectors projected onto the 64 principal axes the student regresses (its ceiling);
(b) the Lee et al. (2005) document-similarity corpus: Pearson r between each encoder's cosine
    similarities and the mean human ratings (upper triangle of the 50 x 50 matrix); count and
    TF-IDF learn their vocabulary and IDF from the 300 background documents;
(c) building a 100,000-text index (all TweetEval tweets, topped up with perturbed copies):
    student embeddings against teacher embeddings. The teacher is timed on a sample with no
    cache and extrapolated linearly (it embeds texts independently, in batches).

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

from benchmarks._harness import (  # noqa: E402
    RESULTS,
    SHARED,
    markdown_table,
    parser,
    print_table,
    write_json,
)
from benchmarks._tweeteval import TASKS, load_task, save_figure, size_defaults  # noqa: E402
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


# --------------------------------------------------------------------------------------------
# (c) building a 100k index
# --------------------------------------------------------------------------------------------


def index_texts(n: int, seed: int) -> tuple[list[str], int]:
    """All TweetEval tweets (train and validation, every task), topped up to ``n`` with
    perturbed copies; returns the texts and how many are real."""
    from simtools.distill.augment import perturbed_copies

    texts: list[str] = []
    for name in TASKS:
        task = load_task(name)
        texts += task.train_texts + task.val_texts
    real = min(len(texts), n)
    texts = texts[:n]
    if len(texts) < n:
        extra, _ = perturbed_copies(texts, -(-(n - len(texts)) // len(texts)), seed=seed)
        texts += extra[: n - len(texts)]
    return texts, real


def index_speed(student: Any, texts: list[str], teacher_sample: int, repeat: int,
                seed: int) -> dict[str, Any]:
    from benchmarks._harness import time_repeat
    from simtools import Index
    from simtools.encoders.teacher import SentenceEncoder
    from simtools.student.featurizer import HashingFeaturizer

    # grow the featurizer's shared hash-power table once, single-threaded (its growth races
    # when several threads trigger it at once)
    HashingFeaturizer().transform(texts)

    def build_student() -> Index:
        index = Index(None, metric="cosine")
        index.add_vectors(student.embed(texts))
        return index

    # one timed pass (the featurizer is warm): on a loaded 2-core machine a pass takes minutes
    student_t = time_repeat(build_student, repeat=1, warmup=0)
    # the teacher: embed a sample of never-seen texts with no cache, then extrapolate
    rng = np.random.default_rng(seed)
    sample = [f"{texts[i]} ~{j}" for j, i in enumerate(rng.choice(len(texts), teacher_sample,
                                                                  replace=False))]
    encoder = SentenceEncoder("minilm")
    encoder.embed(sample[:16])  # load the model and the tokenizer: not part of the rate
    start = time.perf_counter()
    encoder.embed(sample)
    teacher_embed_s = (time.perf_counter() - start) * len(texts) / len(sample)
    vectors = rng.standard_normal((len(texts), 384), dtype=np.float32)

    def add_teacher() -> None:
        Index(None, metric="cosine").add_vectors(vectors)

    add_t = time_repeat(add_teacher, repeat=repeat, warmup=1)
    teacher_total = teacher_embed_s + add_t["median_s"]
    return {"n_texts": len(texts), "student_seconds": student_t["median_s"],
            "student_texts_per_s": len(texts) / student_t["median_s"],
            "student_dim": int(student.embedding_dim),
            "teacher_sample": teacher_sample,
            "teacher_embed_seconds_extrapolated": teacher_embed_s,
            "teacher_add_seconds_measured": add_t["median_s"],
            "teacher_seconds": teacher_total,
            "teacher_texts_per_s": len(texts) / teacher_total,
            "speedup": teacher_total / student_t["median_s"],
            "index_mb": {"student": len(texts) * int(student.embedding_dim) * 4 / 1e6,
                         "teacher": len(texts) * 384 * 4 / 1e6}}


# --------------------------------------------------------------------------------------------


def plot(recall_rows: list[dict], lee_rows: list[dict], speed: dict, path: Path,
         title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6), gridspec_kw={"width_ratios": [3, 3, 2]})
    for ax, rows, key, label in [(axes[0], recall_rows, "recall_at_10",
                                  "recall@10 vs teacher k-NN (held-out tweets)"),
                                 (axes[1], lee_rows, "pearson_r", "Pearson r with human ratings (Lee)")]:
        names = [r["encoder"] for r in rows]
        colours = ["tab:green" if n.startswith("student") else
                   "tab:red" if "MiniLM" in n else "tab:gray" for n in names]
        ax.barh(range(len(rows)), [r[key] for r in rows], color=colours)
        ax.set_yticks(range(len(rows)), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(label, fontsize=10)
        for i, r in enumerate(rows):
            ax.text(r[key], i, f" {r[key]:.3f}", va="center", fontsize=8)
    ax = axes[2]
    bars = [("student", speed["student_seconds"]), ("teacher (extrapolated)", speed["teacher_seconds"])]
    ax.bar([b[0] for b in bars], [b[1] for b in bars], color=["tab:green", "tab:red"])
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log scale)")
    ax.set_title(f"building a {speed['n_texts']:,}-text index\n"
                 f"student {speed['speedup']:,.0f}x faster", fontsize=10)
    for i, (_, v) in enumerate(bars):
        ax.text(i, v, f"{v:,.1f} s", ha="center", va="bottom", fontsize=9)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def readme_tables(payload: dict[str, Any]) -> str:
    """The three tables as the README quotes them ((a) recall@10, (b) Lee, (c) the index
    build), built from the JSON this script writes."""
    speed = payload["index_build"]
    return "\n\n".join([
        markdown_table(["encoder", "recall@10"],
                       [[r["encoder"], round(r["recall_at_10"], 3)]
                        for r in payload["recall_at_10"]]),
        markdown_table(["encoder", "Pearson r", "Spearman rho"],
                       [[r["encoder"], round(r["pearson_r"], 3), round(r["spearman_rho"], 3)]
                        for r in payload["lee"]]),
        markdown_table(["encoder", "seconds", "texts/s", "dim", "vectors (MB)"], [
            ["student", round(speed["student_seconds"], 2),
             round(speed["student_texts_per_s"], 1), speed["student_dim"],
             speed["index_mb"]["student"]],
            [f"teacher MiniLM ({speed['teacher_sample']} texts timed, extrapolated)",
             round(speed["teacher_seconds"], 2), round(speed["teacher_texts_per_s"], 1), 384,
             speed["index_mb"]["teacher"]]]),
    ])


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--max-train", type=int, default=None, help="per task; default 1000, quick 600")
    p.add_argument("--max-val", type=int, default=None, help="per task; default 1000, quick 300")
    p.add_argument("--index-size", type=int, default=100_000)
    p.add_argument("--teacher-sample", type=int, default=None,
                   help="texts the teacher embeds for the index timing (default 400, quick 100)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    quick = args.quick
    size_defaults(args)
    args.teacher_sample = args.teacher_sample or (100 if quick else 400)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    started = time.perf_counter()

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
    # distinct validation tweets that are not also training tweets
    held_out = [t for t in held_task if t.strip() and t not in seen]
    logger.info("%d training tweets, %d held-out tweets", len(train_texts), len(held_out))
    students = train_students(train_texts, train_labels, held_out,
                              [held_task[t] for t in held_out], args)
    student = students["embedding"]

    # (a) -----------------------------------------------------------------------------------
    k = 10
    teacher_vecs = cached_embed("minilm", held_out)
    truth = neighbours(teacher_vecs, k)
    pca = student.extra.get("teacher_pca")
    candidates: list[tuple[str, Any]] = [
        ("student (embedding-distilled)", student.embed(held_out)),
        ("student (hard labels only)", students["none"].embed(held_out)),
        ("count (fit on training tweets)", sparse_encoder("count", train_texts).encode(held_out)),
        ("TF-IDF (fit on training tweets)", sparse_encoder("tfidf", train_texts).encode(held_out)),
        ("paraphrase-MiniLM-L3 (2nd teacher model)", cached_embed("paraphrase-l3", held_out)),
    ]
    if pca is not None:
        candidates.append((f"teacher MiniLM projected to {pca.shape[0]}-d (student's ceiling)",
                           np.ascontiguousarray(teacher_vecs @ pca.T)))
    rng = np.random.default_rng(args.seed)
    candidates.append(("random vectors (chance)",
                       rng.standard_normal((len(held_out), 64)).astype(np.float32)))
    recall_rows = []
    for name, vectors in candidates:
        recall_rows.append({"encoder": name, "recall_at_10": neighbour_recall(neighbours(vectors, k),
                                                                         truth)})
    print_table(recall_rows, ["encoder", "recall_at_10"],
                title=f"(a) recall@10 against teacher (MiniLM) k-NN, {len(held_out)} held-out "
                      f"tweets (cosine)")

    # (b) -----------------------------------------------------------------------------------
    docs, background, human = read_lee()
    lee_candidates = [
        ("count (vocabulary from background)", sparse_encoder("count", background).encode(docs)),
        ("TF-IDF (IDF from background)", sparse_encoder("tfidf", background).encode(docs)),
        ("teacher MiniLM-L6", cached_embed("minilm", docs)),
        ("paraphrase-MiniLM-L3", cached_embed("paraphrase-l3", docs)),
        ("student (embedding-distilled on tweets)", student.embed(docs)),
        ("student (hard labels only)", students["none"].embed(docs)),
    ]
    lee_rows = [{"encoder": name, **pearson_with_humans(v, human)} for name, v in lee_candidates]
    print_table(lee_rows, ["encoder", "pearson_r", "spearman_rho"],
                title="(b) Lee corpus: correlation with mean human ratings (1,225 pairs)")

    # (c) -----------------------------------------------------------------------------------
    texts, real = index_texts(args.index_size, args.seed)
    speed = index_speed(student, texts, args.teacher_sample, args.repeat, args.seed)
    speed["real_tweets"] = real
    print_table([{"encoder": "student", "seconds": speed["student_seconds"],
                  "texts_per_s": speed["student_texts_per_s"], "dim": speed["student_dim"],
                  "vectors_mb": speed["index_mb"]["student"]},
                 {"encoder": "teacher MiniLM (extrapolated)", "seconds": speed["teacher_seconds"],
                  "texts_per_s": speed["teacher_texts_per_s"], "dim": 384,
                  "vectors_mb": speed["index_mb"]["teacher"]}],
                ["encoder", "seconds", "texts_per_s", "dim", "vectors_mb"],
                title=f"(c) building a {len(texts):,}-text index ({real:,} real tweets + "
                      f"perturbed copies); teacher timed on {args.teacher_sample} texts")
    print(f"student builds the index {speed['speedup']:,.0f}x faster")

    mode = "quick" if quick else "full"
    payload = {"mode": mode, "command": " ".join(["python", *sys.argv]), "settings": vars(args),
               "n_train": len(train_texts), "n_held_out": len(held_out),
               "recall_at_10": recall_rows, "lee": lee_rows, "index_build": speed,
               "seconds": round(time.perf_counter() - started, 1)}
    print(f"\nFor the README:\n{readme_tables(payload)}")
    if not args.no_json:
        name = "embedding_fidelity_quick" if quick else "embedding_fidelity"
        write_json(name, payload)
        plot(recall_rows, lee_rows, speed, RESULTS / f"{name}.png",
             f"embedding fidelity ({mode}): student against teacher (MiniLM)")


if __name__ == "__main__":
    main()
