"""The distilled student at run time: hashed n-gram embeddings, mean pooling, a linear head.

Pure numpy (plus safetensors to read the weights): loading a model and classifying one text
imports neither torch nor scikit-learn nor scipy. The head is linear on the mean of the
n-gram embeddings, so it folds into the table: ``mean_i(E[f_i]) @ W + b = mean_i((E @ W)[f_i]) + b``.
Classification gathers rows of the small ``(buckets, classes)`` table ``E @ W`` instead of the
``(buckets, dim)`` embedding table and sums them per text.

A model folder holds ``config.json`` (kind "model", type "student"), ``model.safetensors``
and ``history.json`` (the per-epoch training log).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from .._math import softmax
from ..persistence import (
    save_arrays,
    write_json,
)
from .featurizer import Features, HashingFeaturizer, page_mask
from .kinds import CLASSIFIER_TYPE, ModelFolder, as_texts, bundled_model
from .quantize import dequantize_rows
from .state import check_state

__all__ = ["StudentClassifier", "default_model_path"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
HISTORY_NAME = "history.json"
# Texts per chunk: large enough to amortise numpy call overhead, small enough for the cache.
_CHUNK = 4096
# Rows of a table wider than 8 are summed by a sparse product once the gathered rows would pass
# 4 MB: gathering 64-wide rows first materialised 256 bytes per feature and was 13x slower on
# 20,000 tweets (20-wide: 7x). Up to 8 wide (the classifiers of 2-8 labels) the gather is about
# as fast and keeps `simtools classify` numpy-only, without scipy's 0.27 s import.
_GATHER_MAX_WIDTH = 8
_GATHER_MAX_FLOATS = 1 << 20


def default_model_path() -> Path:
    """The bundled BBC News student (``simtools/models/bbc-news``)."""
    return bundled_model("bbc-news")


class StudentClassifier(ModelFolder):
    """A trained student: ``predict_proba`` for labels, ``embed`` for compact vectors.

    ``embeddings`` float32 ``(buckets, dim)`` (or int8 with ``scale`` ``(buckets,)``),
    ``head_weight`` ``(dim, classes)``, ``head_bias`` ``(classes,)``; optional ``proj_weight``
    ``(dim, out_dim)`` and ``proj_bias`` map the pooled vector into the output embedding space.
    """

    model_type = CLASSIFIER_TYPE
    format_versions = (FORMAT_VERSION,)
    bundled = "bbc-news"
    description = "student"

    def __init__(self, featurizer: HashingFeaturizer, labels: Sequence[str], *,
                 embeddings: np.ndarray, head_weight: np.ndarray, head_bias: np.ndarray,
                 scale: np.ndarray | None = None, proj_weight: np.ndarray | None = None,
                 proj_bias: np.ndarray | None = None, extra: dict[str, np.ndarray] | None = None,
                 config: dict[str, Any] | None = None,
                 history: list[dict[str, Any]] | None = None) -> None:
        self.featurizer = featurizer
        self.labels = [str(label) for label in labels]
        self.embeddings = embeddings
        self.scale = scale
        self.head_weight = np.ascontiguousarray(head_weight, dtype=np.float32)
        self.head_bias = np.ascontiguousarray(head_bias, dtype=np.float32)
        self.proj_weight = None if proj_weight is None else np.asarray(proj_weight, np.float32)
        self.proj_bias = None if proj_bias is None else np.asarray(proj_bias, np.float32)
        self.extra = dict(extra or {})
        self.config = dict(config or {})
        self.history = list(history or [])
        buckets, dim = embeddings.shape
        if buckets != featurizer.buckets:
            raise ValueError(f"embedding table has {buckets} rows but the featurizer hashes into "
                             f"{featurizer.buckets} buckets")
        if self.head_weight.shape != (dim, len(self.labels)):
            raise ValueError(f"head_weight has shape {self.head_weight.shape}, expected "
                             f"({dim}, {len(self.labels)}) for dim {dim} and {len(self.labels)} labels")
        self._logit_table: np.ndarray | None = None
        self._embed_table: np.ndarray | None = None

    # -- shapes -------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Length of the pooled n-gram vector."""
        return int(self.embeddings.shape[1])

    @property
    def embedding_dim(self) -> int:
        """Length of the vectors :meth:`embed` returns."""
        return self.dim if self.proj_weight is None else int(self.proj_weight.shape[1])

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def dense_embeddings(self) -> np.ndarray:
        """The embedding table as float32 ``(buckets, dim)`` (dequantised if int8)."""
        return dequantize_rows(self.embeddings, self.scale)

    def _table(self) -> np.ndarray:
        if self._logit_table is None:
            if self.scale is None:
                table = np.asarray(self.embeddings, np.float32) @ self.head_weight
            else:
                # the row scale commutes with the head: (q * s) @ W = s * (q @ W)
                table = (self.embeddings.astype(np.float32) @ self.head_weight) * self.scale[:, None]
            self._logit_table = np.ascontiguousarray(table, dtype=np.float32)
        return self._logit_table

    # -- inference ----------------------------------------------------------------------------
    def _pooled_sum(self, feats: Features, table: np.ndarray) -> np.ndarray:
        """Per-text sums of ``table`` rows over all features: float32 ``(n, table.shape[1])``."""
        n = len(feats.starts[0]) - 1
        total = np.zeros((n, table.shape[1]), dtype=np.float32)
        width = table.shape[1]
        if width > _GATHER_MAX_WIDTH and sum(map(len, feats.ids)) * width > _GATHER_MAX_FLOATS:
            # A (texts x buckets) count matrix times the table: scipy's kernel adds each row
            # in place. Imported here, so that classifying a few texts stays numpy-only.
            from scipy.sparse import csr_array

            for ids, starts in zip(feats.ids, feats.starts, strict=True):
                if len(ids):
                    counts = csr_array((np.ones(len(ids), np.float32), ids, starts),
                                       shape=(n, table.shape[0]))
                    total += counts @ table
            return total
        for ids, starts in zip(feats.ids, feats.starts, strict=True):
            if len(ids) == 0:
                continue
            # A zero row after the last feature keeps every segment start a valid index, so a
            # text followed by empty texts keeps its last feature (clamping the starts did not)
            rows = np.empty((len(ids) + 1, width), dtype=table.dtype)
            table.take(ids, axis=0, out=rows[:-1])
            rows[-1] = 0.0
            sums = np.add.reduceat(rows, starts[:-1], axis=0)
            # reduceat returns rows[start] for empty segments: zero them
            sums[starts[:-1] == starts[1:]] = 0.0
            total += sums
        return total

    def _logits_chunk(self, texts: Sequence[str],
                      pages: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, Any]:
        feats = self.featurizer.transform(texts, known_pages=pages)
        counts = feats.counts
        sums = self._pooled_sum(feats, self._table())
        logits = sums / np.maximum(counts, 1)[:, None].astype(np.float32) + self.head_bias
        return logits.astype(np.float32, copy=False), counts, feats.known_words

    def _map_chunks(self, texts: Sequence[str], func: Any) -> list[Any]:
        chunks = [texts[i: i + _CHUNK] for i in range(0, len(texts), _CHUNK)]
        if len(chunks) <= 2:
            return [func(c) for c in chunks]
        # numpy releases the GIL in its array loops, so two threads use two cores
        workers = min(len(chunks), os.cpu_count() or 1, 4)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(func, chunks))

    def _predict(self, texts: Sequence[str], *, strict: bool,
                 check_scripts: bool) -> tuple[list[str], np.ndarray, np.ndarray | None]:
        """``(texts, logits, known)``; ``known`` (bool ``(n,)``) when scripts are checked."""
        texts = as_texts(texts)
        # The scripts seen in training (256-code-point pages of letters and digits); a model
        # saved before they were recorded skips the check.
        pages_seen = self.config.get("known_pages") if check_scripts else None
        pages = None if pages_seen is None else page_mask(pages_seen)
        parts = self._map_chunks(texts, lambda chunk: self._logits_chunk(chunk, pages))
        logits = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, len(self.labels)), np.float32)
        if strict:
            counts = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
            empty = np.flatnonzero(counts == 0)
            if len(empty):
                i = int(empty[0])
                raise ValueError(f"text {i + 1} ({texts[i][:40]!r}) is empty or has no words or symbols "
                                 f"({len(empty)} such texts); remove empty texts before classifying")
        known = None
        if pages is not None:
            known = (np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int64)) > 0
        return texts, logits, known

    def unknown_script_error(self, texts: Sequence[str], known: np.ndarray) -> str:
        """The message for texts with no letter or digit in the model's scripts."""
        unknown = np.flatnonzero(~known)
        i = int(unknown[0])
        return (f"{len(unknown)} text(s) have no letter or digit in the scripts this model was "
                f"trained on ({_describe_pages(self.config.get('known_pages', []))}), e.g. text "
                f"{i + 1} ({texts[i][:40]!r}); use a model trained on that language, or classify "
                "them anyway with check_scripts=False")

    def predict_logits(self, texts: Sequence[str], *, strict: bool = True,
                       check_scripts: bool = False) -> np.ndarray:
        """Logits float32 ``(n, classes)``, columns in the order of :attr:`labels`.

        With ``strict``, a text without a single token (empty, whitespace) is an error. With
        ``check_scripts``, so is a text with no letter or digit in the scripts the model was
        trained on (Hangul given to an English model, emoji only): hashing gives such a text
        features, but the model never learnt anything about them.
        """
        texts, logits, known = self._predict(texts, strict=strict, check_scripts=check_scripts)
        if known is not None and not known.all():
            raise ValueError(self.unknown_script_error(texts, known))
        return logits

    def predict_proba_known(self, texts: Sequence[str], *,
                            check_scripts: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """``(probabilities, known)``: every text answered, and a bool ``(n,)`` that is False
        for a text without a single word or symbol (blank, control characters) and, with
        ``check_scripts``, for one with no letter or digit in the model's scripts; the rows of
        those mean little (the bias alone, or features the model never learnt)."""
        texts = as_texts(texts)
        pages_seen = self.config.get("known_pages") if check_scripts else None
        pages = None if pages_seen is None else page_mask(pages_seen)
        parts = self._map_chunks(texts, lambda chunk: self._logits_chunk(chunk, pages))
        if not parts:
            return np.zeros((0, len(self.labels)), np.float32), np.zeros(0, dtype=bool)
        known = np.concatenate([p[1] for p in parts]) > 0
        if pages is not None:
            known &= np.concatenate([p[2] for p in parts]) > 0
        return softmax(np.concatenate([p[0] for p in parts])), known

    def predict_proba(self, texts: Sequence[str], *, check_scripts: bool = False) -> np.ndarray:
        """Class probabilities float32 ``(n, classes)``; columns in the order of :attr:`labels`.

        ``check_scripts``: see :meth:`predict_logits`.
        """
        return softmax(self.predict_logits(texts, check_scripts=check_scripts))

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most probable label of each text."""
        best = self.predict_logits(texts).argmax(axis=1)
        return [self.labels[i] for i in best]

    def top_k(self, texts: Sequence[str], k: int = 3) -> list[list[tuple[str, float]]]:
        """The ``k`` most probable (label, probability) pairs of each text, best first."""
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        proba = self.predict_proba(texts)
        k = min(k, proba.shape[1])
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return [[(self.labels[j], float(proba[i, j])) for j in row] for i, row in enumerate(order)]

    def pooled(self, texts: Sequence[str]) -> np.ndarray:
        """Mean of the n-gram embeddings of each text, float32 ``(n, dim)`` (zeros if no token)."""
        texts = as_texts(texts)
        table = self.dense_embeddings()

        def chunk(part: Sequence[str]) -> np.ndarray:
            feats = self.featurizer.transform(part)
            return self._pooled_sum(feats, table) / np.maximum(feats.counts, 1)[:, None]

        parts = self._map_chunks(texts, chunk)
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def embed(self, texts: Sequence[str], *, normalize: bool = True) -> np.ndarray:
        """Compact sentence vectors float32 ``(n, embedding_dim)``, L2-normalised by default.

        A text without a token gets the zero vector (it has no direction).
        """
        texts = as_texts(texts)
        # The projection is linear, so like the head it folds into the table, made once.
        if self._embed_table is None:
            table = self.dense_embeddings()
            if self.proj_weight is not None:
                table = table @ self.proj_weight
            self._embed_table = np.ascontiguousarray(table, dtype=np.float32)
        table = self._embed_table

        def chunk(part: Sequence[str]) -> np.ndarray:
            feats = self.featurizer.transform(part)
            return self._pooled_sum(feats, table) / np.maximum(feats.counts, 1)[:, None]

        vectors = np.concatenate(self._map_chunks(texts, chunk)).astype(np.float32)
        if self.proj_bias is not None:
            # a text without a token stays the zero vector: no direction, not the bias
            vectors[np.abs(vectors).sum(axis=1) > 0] += self.proj_bias
        if normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    # -- persistence --------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        out = {"embeddings": self.embeddings, "head_weight": self.head_weight,
               "head_bias": self.head_bias}
        if self.scale is not None:
            out["embeddings_scale"] = self.scale
        if self.proj_weight is not None:
            out["proj_weight"] = self.proj_weight
        if self.proj_bias is not None:
            out["proj_bias"] = self.proj_bias
        out.update(self.extra)
        return out

    def save_into(self, folder: Path) -> None:
        """Write the model's files into an existing folder (a version being saved, or the
        ``model/`` folder of a student encoder: the one format of a student)."""
        config = {**self.config, "kind": "model", "format_version": FORMAT_VERSION,
                  "type": "student", "labels": self.labels,
                  "featurizer": self.featurizer.params(), "dim": self.dim,
                  "embedding_dim": self.embedding_dim, "quantized": self.quantized}
        write_json(folder / "config.json", config)
        save_arrays(folder / WEIGHTS_NAME, self.arrays())
        write_json(folder / HISTORY_NAME, self.history)

    @classmethod
    def _from_files(cls, path: Path, config: dict[str, Any], arrays: dict[str, np.ndarray],
                    history: list[Any]) -> StudentClassifier:
        return cls.from_state(config, arrays, history=history)

    @classmethod
    def from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray], *,
                   history: list[dict[str, Any]] | None = None) -> StudentClassifier:
        """Rebuild a model from its config (``labels``, ``featurizer``) and named arrays."""
        known = {"embeddings", "embeddings_scale", "head_weight", "head_bias", "proj_weight",
                 "proj_bias"}
        check_state(config, {k: v for k, v in arrays.items() if k in known})
        featurizer = HashingFeaturizer.from_params(config["featurizer"])
        return cls(featurizer, config["labels"], embeddings=arrays["embeddings"],
                   scale=arrays.get("embeddings_scale"), head_weight=arrays["head_weight"],
                   head_bias=arrays["head_bias"], proj_weight=arrays.get("proj_weight"),
                   proj_bias=arrays.get("proj_bias"),
                   extra={k: v for k, v in arrays.items() if k not in known},
                   config=config, history=history)


def _describe_pages(pages: Sequence[int]) -> str:
    """Pages as code-point ranges, e.g. 'U+0000-U+01FF'."""
    ranges: list[list[int]] = []
    for page in sorted(pages):
        if ranges and ranges[-1][1] == page - 1:
            ranges[-1][1] = page
        else:
            ranges.append([page, page])
    return ", ".join(f"U+{lo << 8:04X}-U+{(hi << 8) | 0xFF:04X}" for lo, hi in ranges)
