"""The distilled student: hashed n-gram features, the numpy runtime, and its quantisation.

Below the encoders and classifiers that use it: ``encoders.student`` wraps it as an index
encoder, ``classify`` re-exports :class:`StudentClassifier`, ``distill`` trains it.
"""

from __future__ import annotations

from .groups import GroupedStudents, load_model
from .model import StudentClassifier, default_model_path

__all__ = ["GroupedStudents", "StudentClassifier", "default_model_path", "load_model"]
