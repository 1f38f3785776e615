"""Deprecated home of the student runtime: it moved to :mod:`simtools.student`."""

from __future__ import annotations

import warnings

from ..evaluation import score_predictions
from ..student.model import StudentClassifier, default_model_path
from ..student.quantize import quantize_rows

__all__ = ["StudentClassifier", "default_model_path", "quantize_rows", "score_predictions"]

warnings.warn("simtools.classify.student moved to simtools.student (StudentClassifier is also "
              "simtools.StudentClassifier); the old path will be removed in simtools 0.3",
              DeprecationWarning, stacklevel=2)
