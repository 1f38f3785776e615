"""Deprecated home of the student's featurizer: it moved to :mod:`simtools.student.featurizer`."""

from __future__ import annotations

import warnings

from ..student.featurizer import *  # noqa: F403
from ..student.featurizer import __all__  # noqa: F401

warnings.warn("simtools.encoders._hashing moved to simtools.student.featurizer",
              DeprecationWarning, stacklevel=2)
