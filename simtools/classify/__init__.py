"""Classifiers: by neighbours over an index (knn), and the distilled student (student).

Imports are lazy: the numpy-only student runtime must load without scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["KNNClassifier", "NearestDocumentClassifier", "StudentClassifier"]

_LAZY = {
    "KNNClassifier": "simtools.classify.knn",
    "NearestDocumentClassifier": "simtools.classify.knn",
    "StudentClassifier": "simtools.classify.student",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'simtools.classify' has no attribute {name!r}")
