"""Static token vectors from the teacher: the starting point of the embedding student.

The recipe of model2vec, written for our packaged ONNX teacher: run the teacher on every token
of its own vocabulary alone (``[CLS] token [SEP]``), reduce the outputs with PCA, and weight
each token by how rare it is (SIF: ``a / (a + p(token))``), so that frequent, uninformative
tokens count less in a text's mean. model2vec estimates ``p`` from the token's rank (Zipf's
law); here ``p`` may also be counted on a corpus.

Needs the teacher extra (onnxruntime and the packaged model); numpy for the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["Pca", "corpus_probabilities", "count_tokens", "sif_weights", "teacher_token_vectors",
           "teacher_vocab", "zipf_probabilities"]

logger = logging.getLogger(__name__)

CLS_ID, SEP_ID = 101, 102


def teacher_vocab() -> list[str]:
    """The teacher's WordPiece vocabulary, token ``i`` at position ``i``."""
    from ..encoders.teacher import teacher_vocabulary

    return teacher_vocabulary()


def teacher_token_vectors(vocab_size: int, *, model: str = "minilm", batch_size: int = 1024,
                          cls_id: int = CLS_ID, sep_id: int = SEP_ID,
                          progress: Callable[[int, int], None] | None = None
                          ) -> dict[str, np.ndarray]:
    """The teacher's last hidden states for every token id alone, float32 ``(vocab_size, dim)``.

    Returns ``"mean"``: the mean over ``[CLS]``, the token and ``[SEP]`` (model2vec's ``mean``
    pooling), and ``"token"``: the token's own position.
    """
    from ..encoders.teacher import OnnxSentenceModel

    backend = OnnxSentenceModel(model)
    dim = backend.spec.dim
    out = {"mean": np.zeros((vocab_size, dim), np.float32),
           "token": np.zeros((vocab_size, dim), np.float32)}
    for start in range(0, vocab_size, batch_size):
        ids = np.arange(start, min(vocab_size, start + batch_size), dtype=np.int64)
        batch = np.stack([np.full_like(ids, cls_id), ids, np.full_like(ids, sep_id)], axis=1)
        hidden = backend.hidden_states(batch)
        out["mean"][ids] = hidden.mean(axis=1)
        out["token"][ids] = hidden[:, 1]
        if progress is not None:
            progress(int(ids[-1]) + 1, vocab_size)
    return out


class Pca:
    """Principal axes of the rows of a matrix (centred), by an eigendecomposition of the
    covariance: ``transform(X) = (X - mean_) @ components_.T``, ``components_`` ``(k, dim)``."""

    def __init__(self, n_components: int) -> None:
        self.n_components = n_components

    def fit(self, X: np.ndarray, *, center: bool = True) -> Pca:
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0) if center else np.zeros(X.shape[1])
        centred = X - self.mean_
        values, vectors = np.linalg.eigh(centred.T @ centred / max(1, len(X) - 1))
        order = np.argsort(values)[::-1][: self.n_components]
        self.explained_variance_ = np.clip(values[order], 0, None)
        self.explained_variance_ratio_ = self.explained_variance_ / max(values.clip(0).sum(), 1e-12)
        components = vectors[:, order].T
        # a fixed sign per axis (its largest loading positive), so that refits agree
        signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
        self.components_ = (components * signs[:, None]).astype(np.float32)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(
            (np.asarray(X, np.float32) - self.mean_.astype(np.float32)) @ self.components_.T)


def zipf_probabilities(n: int) -> np.ndarray:
    """Token probabilities from rank alone (``p ~ 1 / (rank + 1)``), rank = position."""
    inv_rank = 1.0 / np.arange(2, n + 2, dtype=np.float64)
    return inv_rank / inv_rank.sum()


def sif_weights(probabilities: np.ndarray, a: float = 1e-4) -> np.ndarray:
    """Smooth inverse frequency weights ``a / (a + p)``, float32."""
    if not 0 < a < 1:
        raise ValueError(f"a must be in (0, 1), got {a}")
    return (a / (a + np.asarray(probabilities, dtype=np.float64))).astype(np.float32)


def corpus_probabilities(counts: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """Token probabilities counted on a corpus (add-``smoothing``), float64 ``(vocab,)``."""
    counts = np.asarray(counts, dtype=np.float64) + smoothing
    return counts / counts.sum()


def count_tokens(ids_per_batch: Sequence[np.ndarray], vocab_size: int) -> np.ndarray:
    """How often each token id occurs, int64 ``(vocab_size,)``."""
    total = np.zeros(vocab_size, dtype=np.int64)
    for ids in ids_per_batch:
        total += np.bincount(ids, minlength=vocab_size)
    return total
