"""The metric-aware index: an encoder, a search backend, and ids, labels, titles and metadata.

The user picks a metric; the index decides how to serve it. Cosine and normalised Euclidean
are inner product over unit vectors (so FAISS and BLAS serve them alike), Euclidean is squared
L2 turned back into a distance, inner product is served as is. Scores come back in the metric's
own terms: cosine similarity, Euclidean distance, ``1 - ||a^ - b^||`` or the dot product.

A saved index is a versioned folder (:mod:`simtools.folders`) whose current version holds::

    config.json        kind "index", format_version, metric, backend, counts
    documents.jsonl    one line per vector: id, title, label, metadata
    norms.npy          the vectors' norms as added
    encoder/           the fitted encoder (absent for a vectors-only index)
    vectors.npy | vectors.safetensors | index.faiss    the backend's files
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_choice, check_k, check_texts, check_vectors, is_sparse
from ..folders import open_folder, save_folder
from ..metrics import Metric, l2_normalize, row_norms
from .backend import Backend, BackendKind, InnerMetric
from .backends import make_backend, move_backend
from .device import Device
from .index_files import read_index_files, write_index_files
from .shards_store import is_sharded

__all__ = ["Index", "Neighbour"]

#: The module of ShardedIndex, which builds on Index: named here, not imported, so that the
#: base class does not depend on its subclass (as encoders are named in encoders.base).
SHARDED_INDEX = "simtools.index.sharded"



@dataclass
class Neighbour:
    """One search result: the document's id, its score under the index metric, and metadata."""

    id: str
    score: float
    title: str | None = None
    label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "label": self.label, "score": self.score}


class Index:
    """A k-NN index over texts (through an encoder) or over raw vectors.

    Parameters
    ----------
    encoder : an :class:`~simtools.encoders.base.Encoder` (fitted, or fitted on the first
        :meth:`add_texts`), a name for :func:`~simtools.encoders.make_encoder`, or ``None`` for
        a vectors-only index.
    metric : "cosine", "euclidean", "normalized_euclidean" or "inner_product". Left unset: the
        encoder's own scoring metric (inner product for ``bm25``, whose inner products are
        BM25 scores; any other metric would change its ranking and is refused), else cosine.
    backend : "exact" (default: BLAS or sparse scipy), "flat", "hnsw" or "ivf" (FAISS; dense only).
    device : where exact dense search runs: "auto" (default: the GPU when torch sees one, else
        the CPU), "cpu" or "cuda" (torch; ``pip install simtools[train]``). Not saved: a folder
        saved on a GPU machine loads anywhere. FAISS kinds run where their build runs them.
    dtype : how a GPU holds the vectors: "float32" (default), "float16" or "bfloat16" (less
        memory); results are re-ranked in float32 and stay exact (simtools.index.torch_exact).
    **options : backend knobs, e.g. ``ef_search`` for HNSW, ``nprobe`` for IVF.
    """

    def __init__(self, encoder: Any = None, *, metric: str | Metric | None = None,
                 backend: str | BackendKind = "exact", device: str | Device = "auto",
                 dtype: str = "float32", **options: Any) -> None:
        if isinstance(encoder, str):
            from ..encoders import make_encoder

            encoder = make_encoder(encoder)
        self.encoder = encoder
        own = getattr(encoder, "scoring_metric", None)
        self.metric = check_choice(metric or own or "cosine", Metric, name="metric")
        if own is not None and self.metric is not Metric(own):
            from ..errors import InputError

            raise InputError(f"a {encoder.type_name} index scores by {own}: its inner products "
                             f"are the {encoder.type_name} scores, and {self.metric.value} "
                             f"would renormalise them and change the ranking; use "
                             f"metric={own!r} or leave metric unset")
        self.backend_kind = check_choice(backend, BackendKind, name="backend")
        self.device = check_choice(device, Device, name="device")
        self.dtype = dtype
        self.options = options
        self._backend: Backend | None = None
        self.ids: list[str] = []
        self._id_set: set[str] = set()  # the ids again, for O(1) duplicate checks on add
        self.titles: list[str | None] = []
        self.labels: list[str | None] = []
        self.metadata: list[dict[str, Any]] = []
        self._next_id = 0
        # Norms of the vectors as added (before normalisation): with them, the raw vectors and
        # every metric can be recovered from a cosine index (see simtools.compare).
        self._norms = np.zeros(0, dtype=np.float32)

    # -- sizes ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int | None:
        return None if self._backend is None else self._backend.dim

    @property
    def sparse(self) -> bool:
        """Whether the index stores sparse vectors (count, tf-idf and hashing encoders)."""
        return bool(getattr(self._backend, "sparse", False))

    @property
    def inner_metric(self) -> InnerMetric:
        return InnerMetric.L2 if self.metric is Metric.EUCLIDEAN else InnerMetric.IP

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, texts: Any, *, what: str = "text") -> Any:
        """Vectors for ``texts`` (``what="query"``: as queries, for encoders that weight queries
        and documents differently, such as ``bm25``).

        A text that encodes to a zero vector (empty, or no token the encoder knows) is an error.
        """
        from ..errors import InputError

        if self.encoder is None:
            raise ValueError("this index was built from vectors, not texts; pass vectors instead")
        texts = check_texts(texts, name="queries" if what == "query" else what + "s")
        if not getattr(self.encoder, "is_fitted_", False):
            if what != "document":
                raise ValueError("the index's encoder is not fitted yet; add documents first")
            self.encoder.fit(texts)  # an unfitted encoder learns from the first documents
        encode = self.encoder.encode
        if what == "query":
            encode = getattr(self.encoder, "encode_queries", encode)
        vectors = encode(texts)
        zero = np.flatnonzero(row_norms(vectors) == 0)
        if len(zero):
            sample = texts[zero[0]]
            raise InputError(f"{len(zero)} {what}(s) have no token this encoder knows, e.g. "
                             f"{sample[:60]!r}; use longer text, or an encoder with character "
                             "n-grams (encoder='char') or a dense one (encoder='student')")
        return vectors

    def stored_vectors(self, *, raw: bool = False) -> Any:
        """Every stored vector in position order (dense or CSR); ``raw`` undoes normalisation."""
        X = getattr(self._backend, "vectors", None)
        if X is None:
            raise ValueError(f"the {self.backend_kind.value!r} backend does not keep its vectors; "
                             "use an index built with backend='exact'")
        if raw and self.metric.normalizes:
            scale = self._norms.astype(np.float32)[:, None]
            X = X.multiply(scale).tocsr() if is_sparse(X) else X * scale
        return X

    def with_metric(self, metric: str | Metric) -> Index:
        """The same documents under another metric (a new exact index, rebuilt from raw vectors)."""
        metric = check_choice(metric, Metric, name="metric")
        if metric is self.metric:
            return self
        other = Index(self.encoder, metric=metric, backend=self.backend_kind, device=self.device,
                      dtype=self.dtype, **self.options)
        other.add_vectors(self.stored_vectors(raw=True), ids=self.ids, labels=self.labels,
                          titles=self.titles, metadata=self.metadata)
        other._next_id = self._next_id
        return other

    def _prepare(self, vectors: Any, norms: np.ndarray | None = None) -> Any:
        """Checked vectors (see ``check_vectors``) as the backend stores them: normalised for
        cosine and normalised Euclidean, with ``norms`` when the caller has them already."""
        if self.metric.normalizes:
            norms = row_norms(vectors) if norms is None else norms
            if (norms == 0).any():
                raise ValueError(f"a zero vector has no direction, so {self.metric.value} is "
                                 "undefined for it; drop zero rows or use metric='euclidean'")
            vectors = l2_normalize(vectors, norms)
            vectors = vectors if is_sparse(vectors) else np.ascontiguousarray(vectors, np.float32)
        return vectors

    # -- adding and removing ----------------------------------------------------------------
    def add_texts(self, texts: Sequence[str], *, ids: Sequence[str] | None = None,
                  labels: Sequence[str | None] | None = None,
                  titles: Sequence[str | None] | None = None,
                  metadata: Sequence[dict[str, Any]] | None = None) -> list[str]:
        """Encode and add texts; returns their ids (given, or numbered from 0)."""
        return self.add_vectors(self.encode(texts, what="document"), ids=ids, labels=labels,
                                titles=titles, metadata=metadata)

    def add_vectors(self, vectors: Any, *, ids: Sequence[str] | None = None,
                    labels: Sequence[str | None] | None = None,
                    titles: Sequence[str | None] | None = None,
                    metadata: Sequence[dict[str, Any]] | None = None) -> list[str]:
        """Add vectors (dense ``(n, dim)`` or sparse) with optional ids, labels, titles, metadata."""
        vectors = check_vectors(vectors, dim=self.dim)  # once: the one pass over the input
        norms = row_norms(vectors)
        vectors = self._prepare(vectors, norms)
        norms = norms.astype(np.float32)
        n = vectors.shape[0]
        new_ids = self._new_ids(n, ids)
        columns = {"labels": labels, "titles": titles, "metadata": metadata}
        for name, column in columns.items():
            if column is not None and len(column) != n:
                raise ValueError(f"got {n} vectors but {len(column)} {name}; give one per vector")
        if self._backend is None:
            self._backend = make_backend(self.backend_kind, vectors.shape[1], self.inner_metric,
                                          is_sparse(vectors), self.options, device=self.device,
                                          dtype=self.dtype)
        elif is_sparse(vectors) != self.sparse:
            raise ValueError("cannot mix sparse and dense vectors in one index")
        self._backend.add(vectors)
        self._norms = np.concatenate([self._norms, norms])
        self.ids.extend(new_ids)
        self._id_set.update(new_ids)
        self.labels.extend([_opt_str(x) for x in labels] if labels is not None else [None] * n)
        self.titles.extend(list(titles) if titles is not None else [None] * n)
        self.metadata.extend([dict(m) for m in metadata] if metadata is not None else [{}] * n)
        return new_ids

    def _new_ids(self, n: int, ids: Sequence[str] | None) -> list[str]:
        if ids is None:
            new = [str(self._next_id + i) for i in range(n)]
            self._next_id += n
        else:
            new = [str(i) for i in ids]
            if len(new) != n:
                raise ValueError(f"got {n} vectors but {len(new)} ids; give one id per vector")
        existing = self._id_set
        if len(set(new)) != len(new) or not existing.isdisjoint(new):
            dup = next(i for i in new if i in existing or new.count(i) > 1)
            raise ValueError(f"id {dup!r} is already in the index (ids must be unique); "
                             "remove it first or choose another id")
        return new

    def remove(self, ids: str | Iterable[str]) -> int:
        """Remove documents by id (one id, or several); returns how many were removed.

        An id the index does not hold is an UnknownIdError, and then nothing is removed.
        """
        from ..errors import UnknownIdError

        # A str is one id: iterating "12" would remove the ids "1" and "2".
        wanted = [ids] if isinstance(ids, str) else [str(i) for i in ids]
        where = {doc_id: pos for pos, doc_id in enumerate(self.ids)}
        missing = [i for i in wanted if i not in where]
        if missing:
            raise UnknownIdError(f"unknown id(s) {missing[:5]}; nothing was removed (list the "
                                 "ids with Index.ids)")
        positions = np.array(sorted({where[i] for i in wanted}), dtype=np.int64)
        if len(positions) == 0:
            return 0
        assert self._backend is not None
        self._backend.remove(positions)
        self._norms = np.delete(self._norms, positions)
        drop = set(positions.tolist())
        self._id_set.difference_update(wanted)
        keep = [pos for pos in range(len(self.ids)) if pos not in drop]
        self.ids = [self.ids[pos] for pos in keep]
        self.titles = [self.titles[pos] for pos in keep]
        self.labels = [self.labels[pos] for pos in keep]
        self.metadata = [self.metadata[pos] for pos in keep]
        return len(positions)

    # -- searching --------------------------------------------------------------------------
    def _scores_to_metric(self, raw: np.ndarray) -> np.ndarray:
        return self.metric.score_from_inner(raw)

    def search_vectors(self, vectors: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, positions)``, each ``(n_queries, k)``, best first, for raw query vectors."""
        raw, positions = self._search_raw(vectors, k)
        return self._scores_to_metric(raw).astype(np.float32), positions

    def _search_raw(self, vectors: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The backend's own scores (inner products or squared distances) and positions."""
        if self._backend is None or len(self) == 0:
            raise ValueError("the index is empty; add documents before searching")
        k = check_k(k, len(self))
        queries = check_vectors(vectors, dim=self.dim)
        if is_sparse(queries) != self.sparse:
            # Queries may come in either form; the backend serves its own.
            import scipy.sparse as sp

            queries = (sp.csr_matrix(queries, dtype=np.float32) if self.sparse
                       else np.ascontiguousarray(queries.toarray(), dtype=np.float32))
        queries = self._prepare(queries)
        return self._backend.search(queries, k)

    @property
    def drops_unrelated(self) -> bool:
        """Whether a search leaves out documents that share nothing with the query.

        True for a sparse (word or character) index scored by cosine, normalised Euclidean or
        inner product (so also BM25): a document with no term of the query scores exactly 0
        there, and is not a neighbour. Euclidean distance is defined for every document, and a
        dense index has no such zero: they always return ``k`` hits.
        """
        return self.sparse and self.metric is not Metric.EUCLIDEAN

    def search(self, queries: Any, k: int = 10) -> list[list[Neighbour]]:
        """The ``k`` nearest documents to each query text (or query vector), best first.

        On a sparse index not scored by Euclidean distance, documents that share no term with
        the query are left out (see :attr:`drops_unrelated`): a query may get fewer than ``k``
        hits, or none.
        """
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings; wrap a single query in a list")
        # Texts may also come as a numpy array or a pandas Series of str; an empty list is
        # taken as texts so that it gets the "give at least one" error.
        is_text = (isinstance(queries, (list, tuple)) and len(queries) == 0) or (
            not is_sparse(queries) and np.asarray(queries).dtype.kind in "OUS")
        vectors = self.encode(list(queries), what="query") if is_text else queries
        raw, positions = self._search_raw(vectors, k)
        scores = self._scores_to_metric(raw).astype(np.float32)
        keep = positions >= 0
        if self.drops_unrelated:
            keep &= raw != 0  # no shared term: exactly 0, as sparse products add no rounding
        return [[self.neighbour(int(p), float(s)) for s, p, ok in zip(row_s, row_p, row_k) if ok]
                for row_s, row_p, row_k in zip(scores, positions, keep)]

    def use_device(self, device: str | Device = "auto", *, dtype: str = "float32") -> Index:
        """Search on ``device`` from now on (see :class:`Index`); returns the index itself.

        Exact dense search moves between NumPy on the CPU and torch on a GPU; the vectors stay
        in host memory, and a GPU gets its copy at the first search.
        """
        self.device = check_choice(device, Device, name="device")
        self.dtype = dtype
        if self._backend is not None:
            self._backend = move_backend(self._backend, self.device, dtype)
        return self

    def release_buffers(self) -> None:
        """Free the score buffer that exact dense search keeps between searches."""
        release = getattr(self._backend, "release_buffer", None)
        if release is not None:
            release()

    def neighbour(self, position: int, score: float) -> Neighbour:
        """The stored document at ``position`` as a :class:`Neighbour` with ``score``."""
        return Neighbour(self.ids[position], score, self.titles[position], self.labels[position],
                         self.metadata[position])

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the index to the folder ``path`` as a new version (atomic for readers too).

        ``path`` must be new, empty or an index folder; ``force=True`` also replaces a simtools
        folder of another kind and saves beside foreign files, never deleting them (see
        :func:`simtools.folders.check_output`).
        """
        if self._backend is None:
            raise ValueError("the index is empty; add documents before saving")
        with save_folder(path, kind="index", force=force) as tmp:
            self.save_into(tmp)
        return Path(path)

    def save_into(self, folder: Path) -> None:
        """Write the index files into an existing (temporary) folder."""
        write_index_files(self, folder)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, mmap: bool = True) -> Index:
        """Read an index folder; corrupted, truncated or wrong-version folders raise FormatError.

        Every file is checked against the checksums saved with it before it is used, and a save
        running meanwhile in another process is never seen half-done. A sharded index folder
        (see :mod:`simtools.index.sharded`) comes back as a ``ShardedIndex``. Exact dense
        search runs on the GPU when torch sees one (``device="auto"``); ``use_device`` changes it.
        """
        if is_sharded(path):
            sharded: Any = importlib.import_module(SHARDED_INDEX)
            return sharded.ShardedIndex.load(path, mmap=mmap)
        with open_folder(path, kind="index") as folder:
            return cls._load_files(folder, mmap=mmap)

    @classmethod
    def _load_files(cls, folder: Path, *, mmap: bool) -> Index:
        return read_index_files(cls, folder, mmap=mmap)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
