"""Lazy package attributes: import a submodule only when one of its names is first used.

Keeps ``import simtools`` (and the numpy-only student runtime) free of scikit-learn, torch and
the other heavy imports until they are needed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that resolves each of ``names`` (attribute ->
    the module that defines it) on first use."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
