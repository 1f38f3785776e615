"""Hybrid search: a lexical index (BM25) and a dense index (student or MiniLM) over the same
documents, their two rankings fused into one.

Each index is an ordinary :class:`~simtools.index.Index`; a search asks each for its top
``depth`` documents and fuses the two lists:

- ``fusion="rrf"`` (reciprocal rank fusion, Cormack, Clarke and Buettcher 2009): a document
  scores ``2 * weight / (rrf_k + lexical rank) + 2 * (1 - weight) / (rrf_k + dense rank)``,
  a list it is absent from adding nothing. ``weight=0.5`` is plain RRF; ``rrf_k=60`` is the
  paper's constant.
- ``fusion="scores"``: each list's scores are min-max normalised over its candidates (best 1,
  worst 0; absent 0) and added as ``weight * lexical + (1 - weight) * dense``.

The dense index may hold *passages* instead of whole documents (``build_hybrid_index`` cuts
each document into passages of ``passage_words`` words): a sentence embedding of a long article
averages away what any one sentence says, and MiniLM reads only its first 256 tokens. A passage
names its document in its metadata (``"passage_of"``: the document's id), and a document's dense
rank is that of its best passage.

Fused scores are in those terms (``metric`` says which), not in either index's own. A query
with no term the lexical index knows is ranked by the dense index alone; the lexical index
returns only documents sharing a term with the query, the dense one always ``depth``. The
defaults come from ``benchmarks/bench_retrieval.py`` (chosen on its validation queries).

A hybrid index is saved as a versioned folder of kind "hybrid" whose current version holds
``config.json`` (fusion settings) and the two index folders ``lexical/`` and ``dense/``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_k, check_texts
from ..errors import InputError
from ..folders import open_folder, save_folder
from ..persistence import FormatError, read_config, read_json, write_json
from .store import Index, Neighbour

__all__ = ["DEFAULT_DEPTH", "DEFAULT_PASSAGE_WORDS", "DEFAULT_RRF_K", "Fusion", "HybridIndex",
           "build_hybrid_index", "load_searchable", "split_passages"]

FORMAT_VERSION = 1
DEFAULT_RRF_K = 60
DEFAULT_DEPTH = 100
#: Words per dense passage (a paragraph or two), when passages are asked for.
DEFAULT_PASSAGE_WORDS = 100
#: The settings build_hybrid_index uses for each dense encoder: the best of
#: benchmarks/bench_retrieval.py's hybrid grid on its validation queries (mean MRR@10 of the
#: three known-item query forms), where normalised-score fusion beat RRF.
CHOSEN: dict[str, dict[str, Any]] = {
    "student": {"passage_words": None, "fusion": "scores", "weight": 0.85},
    "minilm": {"passage_words": None, "fusion": "scores", "weight": 0.85},
}
PASSAGE_KEY = "passage_of"


def split_passages(text: str, words: int | None = DEFAULT_PASSAGE_WORDS) -> list[str]:
    """``text`` cut into consecutive passages of ``words`` words (None: the text whole)."""
    if words is None:
        return [text]
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        raise InputError(f"passage_words must be a positive integer or None, got {words!r}")
    tokens = text.split()
    if len(tokens) <= words:
        return [text]
    return [" ".join(tokens[i:i + words]) for i in range(0, len(tokens), words)]


class Fusion(str, Enum):
    RRF = "rrf"  # reciprocal rank fusion
    SCORES = "scores"  # min-max normalised scores, weighted sum


def _check_settings(fusion: Any, rrf_k: Any, weight: Any, depth: Any) -> Fusion:
    kind = check_choice(fusion, Fusion, name="fusion")
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, (int, float)) or not (
            math.isfinite(rrf_k) and rrf_k >= 0):
        raise InputError(f"rrf_k must be a number >= 0 (usually {DEFAULT_RRF_K}), got {rrf_k!r}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise InputError(f"weight (the lexical ranking's share) must be between 0 and 1, "
                         f"got {weight!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise InputError(f"depth must be a positive number of candidates per ranking, "
                         f"got {depth!r}")
    return kind


class HybridIndex:
    """Two indexes over the same documents (same ids, same order), searched as one.

    Parameters
    ----------
    lexical : a sparse :class:`Index` (``bm25``, or another word encoder).
    dense : a dense :class:`Index` (``student`` or ``minilm``) of the same documents, or of
        their passages (each with ``metadata["passage_of"]``, its document's id).
    fusion : "scores" (default) or "rrf" (see the module docstring).
    rrf_k : the RRF constant.
    weight : the lexical ranking's share, 0 to 1 (default 0.85; 0.5: both count alike).
    depth : candidates taken from each index per query (at least ``k``).
    """

    def __init__(self, lexical: Index, dense: Index, *, fusion: str | Fusion = "scores",
                 rrf_k: float = DEFAULT_RRF_K, weight: float = 0.85,
                 depth: int = DEFAULT_DEPTH, passage_words: int | None = None) -> None:
        if not isinstance(lexical, Index) or not isinstance(dense, Index):
            raise TypeError("lexical and dense must be simtools Index objects")
        if len(dense) and dense.sparse:
            raise InputError("the dense index holds sparse vectors, so it has no dense vectors "
                             "to fuse; build it with a dense encoder (student or minilm)")
        if len(lexical) and not lexical.sparse:
            raise InputError("the lexical index holds dense vectors; build it with bm25 (or "
                             "another word encoder)")
        self.fusion = _check_settings(fusion, rrf_k, weight, depth)
        split_passages("", passage_words)  # checks the value
        self.lexical, self.dense = lexical, dense
        self.rrf_k, self.weight, self.depth = float(rrf_k), float(weight), int(depth)
        self.passage_words = passage_words
        self._document_of = self._map_passages()

    def _map_passages(self) -> np.ndarray | None:
        """Dense position -> lexical position when the dense index holds passages, else None."""
        lexical, dense = self.lexical, self.dense
        if not any(PASSAGE_KEY in m for m in dense.metadata):
            if lexical.ids != dense.ids:
                raise InputError(f"the two indexes hold different documents ({len(lexical)} "
                                 f"and {len(dense)}, or other ids); build both from the same "
                                 "documents")
            return None
        where = {doc_id: pos for pos, doc_id in enumerate(lexical.ids)}
        owners = [where.get(str(m.get(PASSAGE_KEY))) for m in dense.metadata]
        if any(o is None for o in owners) or len(set(owners)) != len(lexical):
            raise InputError("the dense index's passages do not name the lexical index's "
                             "documents one to one; build both from the same documents")
        return np.asarray(owners, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.lexical)

    @property
    def ids(self) -> list[str]:
        return self.lexical.ids

    @property
    def metric(self) -> str:
        """What the fused scores are: "rrf" or "fused_scores"."""
        return "rrf" if self.fusion is Fusion.RRF else "fused_scores"

    def add_texts(self, texts: Sequence[str], *, ids: Sequence[str] | None = None,
                  labels: Sequence[str | None] | None = None,
                  titles: Sequence[str | None] | None = None,
                  metadata: Sequence[dict[str, Any]] | None = None) -> list[str]:
        """Encode and add texts to both indexes; returns their ids."""
        texts = check_texts(texts)
        passages = [split_passages(t, self.passage_words) if self._document_of is not None
                    else [t] for t in texts]
        # Both encodings first: a text either index cannot place adds nothing to either.
        lexical = self.lexical.encode(texts, what="document")
        dense = self.dense.encode([p for ps in passages for p in ps], what="document")
        new = self.lexical.add_vectors(lexical, ids=ids, labels=labels, titles=titles,
                                       metadata=metadata)
        if self._document_of is None:
            self.dense.add_vectors(dense, ids=new, labels=labels, titles=titles,
                                   metadata=metadata)
            return new
        owner = [i for i, ps in enumerate(passages) for _ in ps]
        self.dense.add_vectors(dense, labels=[labels[i] for i in owner] if labels else None,
                               titles=[titles[i] for i in owner] if titles else None,
                               metadata=[{**(metadata[i] if metadata else {}),
                                          PASSAGE_KEY: new[i]} for i in owner])
        self._document_of = self._map_passages()
        return new

    # -- searching --------------------------------------------------------------------------
    def search(self, queries: Sequence[str], k: int = 10) -> list[list[Neighbour]]:
        """The ``k`` best documents for each query text by the fused ranking, best first.

        A query neither index can place (blank, or no token either encoder knows) is an
        InputError.
        """
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings; wrap a single query in a list")
        results, known = self.search_known(queries, k)
        if not known.all():
            bad = int(np.flatnonzero(~known)[0])
            raise InputError(f"query {bad} ({str(queries[bad])[:60]!r}) has no token either "
                             "encoder knows; give it some words")
        return [row for row in results if row is not None]

    def search_known(self, texts: Sequence[str], k: int = 10
                     ) -> tuple[list[list[Neighbour] | None], np.ndarray]:
        """``(results, known)``: for each text its fused hits, or None when neither index can
        place it (``known`` False: blank, or no token either encoder knows)."""
        from .build import encode_known

        texts = check_texts(texts, name="queries", allow_empty=True)
        if len(self) == 0:
            raise InputError("the index is empty; add documents before searching")
        k = check_k(k, len(self))
        depth = min(len(self), max(self.depth, k))
        lexical = self._ranked(self.lexical, *encode_known(self.lexical, texts, what="query"),
                               depth)
        dense = self._ranked(self.dense, *encode_known(self.dense, texts, what="query"),
                             depth if self._document_of is None else
                             min(len(self.dense), depth * -(-len(self.dense) // len(self))))
        if self._document_of is not None:
            dense = [None if row is None else self._best_passages(row, depth) for row in dense]
        results: list[list[Neighbour] | None] = []
        for lex, den in zip(lexical, dense):
            results.append(None if lex is None and den is None else
                           self._fuse(lex or ([], []), den or ([], []), k))
        known = np.array([row is not None for row in results], dtype=bool)
        return results, known

    @staticmethod
    def _ranked(index: Index, vectors: Any, known: np.ndarray, depth: int
                ) -> list[tuple[list[int], list[float]] | None]:
        """Per text, its ``(positions, scores)`` best first, or None when it is not known."""
        rows: list[tuple[list[int], list[float]] | None] = [None] * len(known)
        if vectors is None:
            return rows
        raw, positions = index._search_raw(vectors, depth)
        scores = index._scores_to_metric(raw)
        keep = positions >= 0
        if index.drops_unrelated:
            keep &= raw != 0
        for row, where in enumerate(np.flatnonzero(known)):
            rows[where] = (positions[row][keep[row]].tolist(), scores[row][keep[row]].tolist())
        return rows

    def _best_passages(self, row: tuple[list[int], list[float]], depth: int
                       ) -> tuple[list[int], list[float]]:
        """A ranking of passages as a ranking of their documents (each at its best passage)."""
        assert self._document_of is not None
        seen: set[int] = set()
        positions, scores = [], []
        for passage, score in zip(*row):
            document = int(self._document_of[passage])
            if document not in seen:
                seen.add(document)
                positions.append(document)
                scores.append(score)
                if len(positions) == depth:
                    break
        return positions, scores

    def _fuse(self, lexical: tuple[list[int], list[float]], dense: tuple[list[int], list[float]],
              k: int) -> list[Neighbour]:
        fused: dict[int, float] = {}
        shares = ((lexical, self.weight), (dense, 1.0 - self.weight))
        for (positions, scores), share in shares:
            if self.fusion is Fusion.RRF:
                for rank, position in enumerate(positions, 1):
                    fused[position] = fused.get(position, 0.0) + 2 * share / (self.rrf_k + rank)
            elif positions:
                top, bottom = scores[0], scores[-1]
                span = top - bottom
                for position, score in zip(positions, scores):
                    normal = (score - bottom) / span if span > 0 else 1.0
                    fused[position] = fused.get(position, 0.0) + share * normal
        lexical_rank = {p: r for r, p in enumerate(lexical[0])}
        order = sorted(fused, key=lambda p: (-fused[p], lexical_rank.get(p, len(self)), p))
        return [self.lexical.neighbour(p, fused[p]) for p in order[:k]]

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write both indexes and the fusion settings to the folder ``path`` (one version)."""
        if len(self) == 0:
            raise InputError("the index is empty; add documents before saving")
        with save_folder(path, kind="hybrid", force=force) as tmp:
            for name, index in (("lexical", self.lexical), ("dense", self.dense)):
                (tmp / name).mkdir()
                index.save_into(tmp / name)
            write_json(tmp / "config.json", {
                "kind": "hybrid", "format_version": FORMAT_VERSION,
                "fusion": self.fusion.value, "rrf_k": self.rrf_k, "weight": self.weight,
                "depth": self.depth, "passage_words": self.passage_words})
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> HybridIndex:
        """Read a hybrid index folder written by :meth:`save`."""
        with open_folder(path, kind="hybrid") as folder:
            config = read_config(folder, kind="hybrid", versions=(FORMAT_VERSION,))
            lexical = Index._load_files(folder / "lexical", mmap=mmap)
            dense = Index._load_files(folder / "dense", mmap=mmap)
        try:
            return cls(lexical, dense, fusion=config["fusion"], rrf_k=config["rrf_k"],
                       weight=config["weight"], depth=config["depth"],
                       passage_words=config["passage_words"])
        except (KeyError, InputError) as e:
            raise FormatError(f"{path} has an inconsistent hybrid config ({e}); rebuild it") from e


def load_searchable(path: str | os.PathLike[str], *, mmap: bool = True) -> Index | HybridIndex:
    """The index or hybrid index saved at ``path``, whichever it holds."""
    folder = Path(path)
    manifest = folder / "config.json"
    kind = None
    if folder.is_dir() and manifest.is_file():
        config = read_json(manifest)
        kind = config.get("kind") if isinstance(config, dict) else None
    if kind == "hybrid":
        return HybridIndex.load(folder, mmap=mmap)
    return Index.load(folder, mmap=mmap)


def build_hybrid_index(documents: Iterable[Any], *, lexical: Any = "bm25", dense: Any = "student",
                       passage_words: int | None | str = "chosen",
                       batch_size: int = 1024, on_batch: Callable[[int], None] | None = None,
                       on_skip: Callable[[Any], None] | None = None,
                       **settings: Any) -> HybridIndex:
    """A :class:`HybridIndex` of ``documents`` (:class:`~simtools.data.Document`): a BM25 index
    and a dense one over the same documents, cut into passages of ``passage_words`` words
    (None: one vector per document). Settings left out (``passage_words="chosen"``, fusion,
    weight) are those of :data:`CHOSEN` for a dense encoder named there.

    A document the lexical encoder cannot place (no word it knows) is left out of both, and
    passed to ``on_skip`` (without ``on_skip``: an InputError), as in
    :func:`~simtools.index.build.build_index`. ``settings`` go to :class:`HybridIndex`.
    ``on_batch(n)`` is called as the lexical index grows (the dense encoding follows).
    """
    from .build import build_index

    chosen = dict(CHOSEN.get(dense, CHOSEN["student"])) if isinstance(dense, str) else {}
    words: int | None = (chosen.get("passage_words") if passage_words == "chosen"
                         else passage_words)  # type: ignore[assignment]
    settings = {**{k: v for k, v in chosen.items() if k != "passage_words"}, **settings}
    docs = list(documents)
    skipped: set[int] = set()

    def skip(document: Any) -> None:
        skipped.add(id(document))
        if on_skip is None:
            raise InputError(f"{document.source or document.title} has no word the lexical "
                             "encoder knows; pass on_skip to leave such documents out")
        on_skip(document)

    from ..encoders import make_encoder

    lexical = make_encoder(lexical) if isinstance(lexical, str) else lexical
    lexical_index = build_index(docs, encoder=lexical, batch_size=batch_size, on_batch=on_batch,
                        on_skip=skip, metric=getattr(lexical, "scoring_metric", "cosine"))
    kept = [d for d in docs if id(d) not in skipped]
    if words is not None:
        from dataclasses import replace

        kept = [replace(d, text=passage, metadata={**d.metadata, PASSAGE_KEY: doc_id})
                for d, doc_id in zip(kept, lexical_index.ids)
                for passage in split_passages(d.text, words)]

    def dense_skip(document: Any) -> None:
        raise InputError(f"{document.source or document.title} has no token the dense encoder "
                         "knows but words the lexical one knows; a hybrid index needs both")

    vectors = build_index(kept, encoder=dense, batch_size=batch_size, on_skip=dense_skip)
    return HybridIndex(lexical_index, vectors, passage_words=words, **settings)
