"""Shared fixtures: a tiny corpus, seeded vectors, and the path to ../shared/datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# CI clones the repository with shared/ beside it; SIMTOOLS_SHARED overrides that.
SHARED = Path(os.environ.get("SIMTOOLS_SHARED", ROOT.parent / "shared"))
DATASETS = SHARED / "datasets"


def shared_file(relative: str) -> Path:
    """Path to a file under ../shared/datasets, or skip the test with the reason."""
    path = DATASETS / relative
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared datasets folder is not beside the checkout)")
    return path


# Four topics, two lengths: the long documents are several times longer than the short ones,
# which is what makes raw Euclidean distance pick the shortest text whatever its topic.
CORPUS = {
    "Machine learning": (
        "machine learning is a field of artificial intelligence that builds models from data. "
        "learning algorithms fit a model to training data and the model makes predictions. "
        "supervised learning uses labelled data; neural networks and decision trees are models. "
        "machine learning models learn patterns from data to predict labels for new data."
    ),
    "Artificial intelligence": (
        "artificial intelligence is intelligence shown by machines and computer programs. "
        "research in artificial intelligence covers reasoning, planning, learning and perception."
    ),
    "Association football": (
        "football is a team sport played between two teams of eleven players with a ball. "
        "players score a goal by kicking the ball into the goal of the other team. "
        "the football world cup is the biggest football tournament; a match lasts ninety minutes. "
        "football clubs play in leagues and the goalkeeper defends the goal against the ball."
    ),
    "Tennis": "tennis is a racket sport played on a court; players hit a ball over a net.",
}

TWEETS = {
    "Machine learning": "training a neural network model on labelled data for predictions",
    "Association football": "what a goal! the football match went to the final minutes",
    "Tennis": "great tennis match on the court, amazing racket skills at the net",
}


@pytest.fixture
def corpus() -> dict[str, str]:
    return dict(CORPUS)


@pytest.fixture
def tweets() -> dict[str, str]:
    return dict(TWEETS)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def vectors(rng: np.random.Generator) -> np.ndarray:
    """300 seeded float32 vectors of dimension 16, in 6 clusters."""
    centres = rng.normal(size=(6, 16)).astype(np.float32) * 4
    X = centres[rng.integers(0, 6, 300)] + rng.normal(size=(300, 16)).astype(np.float32)
    return np.ascontiguousarray(X, dtype=np.float32)
