"""Classifiers: by neighbours over an index (knn), and the distilled student (student).

Imports are lazy: the numpy-only student runtime must load without scikit-learn.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

__all__ = ["KNNClassifier", "NearestDocumentClassifier", "StudentClassifier"]

_LAZY = {
    "KNNClassifier": "simtools.classify.knn",
    "NearestDocumentClassifier": "simtools.classify.knn",
    "StudentClassifier": "simtools.student.model",
}

__getattr__ = lazy_getattr("simtools.classify", _LAZY)
