"""simtools.distill.static_vectors (PCA, SIF weights) and embedding_tune (the fine-tuning)."""

from __future__ import annotations

import numpy as np
import pytest

from simtools.distill.static_vectors import (
    Pca,
    corpus_probabilities,
    count_tokens,
    sif_weights,
    zipf_probabilities,
)


def test_pca_equals_numpy_svd(rng: np.random.Generator) -> None:
    X = rng.normal(size=(200, 8)) @ rng.normal(size=(8, 8))
    pca = Pca(3).fit(X)
    centred = X - X.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    # the same axes up to sign, in the same order, and the same variance
    np.testing.assert_allclose(np.abs(pca.components_ @ vt[:3].T), np.eye(3), atol=1e-4)
    np.testing.assert_allclose(pca.explained_variance_, s[:3] ** 2 / (len(X) - 1), rtol=1e-6)
    reference = centred @ vt[:3].T
    np.testing.assert_allclose(np.abs(pca.transform(X)), np.abs(reference), rtol=1e-3, atol=1e-3)


def test_sif_and_token_probabilities() -> None:
    zipf = zipf_probabilities(5)
    assert zipf.sum() == pytest.approx(1.0) and (np.diff(zipf) < 0).all()
    counts = count_tokens([np.array([0, 0, 2]), np.array([2, 2])], 4)
    assert counts.tolist() == [2, 0, 3, 0]
    p = corpus_probabilities(counts, smoothing=1.0)
    np.testing.assert_allclose(p, np.array([3, 1, 4, 1]) / 9)
    weights = sif_weights(p, a=0.1)
    assert weights.dtype == np.float32 and weights[2] < weights[0] < weights[1] == weights[3]
    with pytest.raises(ValueError, match="a must be in"):
        sif_weights(p, a=0.0)


def test_fine_tune_moves_the_means_towards_the_targets(rng: np.random.Generator) -> None:
    pytest.importorskip("torch")
    from simtools.distill.embedding_tune import TuneConfig, fine_tune

    vocab, dim, n = 30, 8, 400
    truth = rng.normal(size=(vocab, dim)).astype(np.float32)
    lengths = rng.integers(1, 6, size=n)
    lengths[:5] = 0  # texts without a token are skipped
    ids = rng.integers(0, vocab - 3, size=int(lengths.sum())).astype(np.int32)  # 3 tokens unused
    starts = np.concatenate([[0], np.cumsum(lengths)])
    targets = np.zeros((n, dim), np.float32)
    for i in range(n):
        if lengths[i]:
            targets[i] = truth[ids[starts[i]: starts[i + 1]]].mean(axis=0)
    start = rng.normal(size=(vocab, dim)).astype(np.float32)
    table, history = fine_tune(start, ids, starts, targets,
                               TuneConfig(epochs=15, batch_size=32, lr=0.05))
    assert table.dtype == np.float32 and table.shape == start.shape
    assert [h["epoch"] for h in history] == list(range(1, 16))
    assert history[-1]["loss"] < 0.2 * history[0]["loss"]
    np.testing.assert_array_equal(table[-3:], start[-3:])  # rows no text holds do not move
    # the anchor pulls every row towards where it started
    free, _ = fine_tune(start, ids, starts, targets, TuneConfig(epochs=3, lr=0.05))
    held, _ = fine_tune(start, ids, starts, targets, TuneConfig(epochs=3, lr=0.05, anchor=10.0))
    assert np.linalg.norm(held - start) < 0.5 * np.linalg.norm(free - start)
    with pytest.raises(ValueError, match="loss must be"):
        TuneConfig(loss="l1")
