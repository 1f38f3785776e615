"""simtools: similarity search and text classification, fast and offline.

The public names load lazily, so ``import simtools`` is cheap and never imports torch::

    import simtools
    index = simtools.Index("tfidf", metric="cosine")
    index.add_texts(["a text about tennis", "a text about football"], labels=["tennis", "football"])
    index.search(["tennis racket"], k=1)
"""

from __future__ import annotations

from ._lazy import lazy_getattr
from ._version import __version__

__all__ = [
    "Index",
    "KNNClassifier",
    "Metric",
    "NearestDocumentClassifier",
    "StudentClassifier",
    "__version__",
    "load_encoder",
    "make_encoder",
    "pairwise",
]

_LAZY = {
    "Index": "simtools.index.store",
    "Metric": "simtools.metrics",
    "pairwise": "simtools.metrics",
    "KNNClassifier": "simtools.classify.knn",
    "NearestDocumentClassifier": "simtools.classify.knn",
    "StudentClassifier": "simtools.student.model",
    "make_encoder": "simtools.encoders",
    "load_encoder": "simtools.encoders.base",
}

__getattr__ = lazy_getattr("simtools", _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
