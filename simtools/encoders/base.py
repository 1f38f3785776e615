"""The one interface every encoder (text -> vectors) follows, and its folder persistence.

An encoder is a scikit-learn transformer: ``__init__`` stores parameters, ``fit(texts)`` learns
(a vocabulary, idf weights, nothing at all for a pretrained model) and returns ``self``,
``encode(texts)`` (alias ``transform``) returns C-contiguous float32 ``(n, dim)`` or CSR float32
when :attr:`Encoder.sparse` is true. So an encoder fits in a ``Pipeline``.

Subclasses implement ``_fit``, ``_encode``, ``dim`` and the pair ``_get_state`` /
``_from_state`` that turns them into JSON config plus named arrays; this module does the rest
(validation, atomic folder writes, dispatch on load by the ``type`` recorded in the config).
"""

from __future__ import annotations

import importlib
import os
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import check_texts
from ..folders import open_folder, save_folder
from ..persistence import (
    FormatError,
    load_arrays,
    member,
    read_config,
    save_arrays,
    write_json,
)

__all__ = ["Encoder", "load_encoder", "register_encoder"]

FORMAT_VERSION = 1
ARRAYS_NAME = "encoder.safetensors"

# type name -> "module:Class", imported only when a folder of that type is loaded, so that
# loading a count encoder never imports torch or onnxruntime.
_REGISTRY: dict[str, str] = {
    "bm25": "simtools.encoders.bm25:BM25Encoder",
    "count": "simtools.encoders.count:CountEncoder",
    "student": "simtools.encoders.student:StudentEncoder",
    "student-embedding": "simtools.encoders.student:EmbeddingStudentEncoder",
    "teacher": "simtools.encoders.teacher:SentenceEncoder",
}


def register_encoder(type_name: str, target: str) -> None:
    """Make ``load_encoder`` able to read folders of ``type_name`` (``target``: "module:Class")."""
    _REGISTRY[type_name] = target


class Encoder(TransformerMixin, BaseEstimator):
    """Base class: texts in, vectors out (dense float32 or sparse CSR float32)."""

    type_name: ClassVar[str] = ""
    #: True when ``encode`` returns a scipy CSR matrix.
    sparse: ClassVar[bool] = False

    # -- the contract -----------------------------------------------------------------------
    def fit(self, texts: Any, y: Any = None) -> Encoder:
        """Learn what the encoder needs from ``texts``; returns ``self``."""
        self._fit(check_texts(texts))
        self.is_fitted_ = True
        return self

    def encode(self, texts: Any) -> Any:
        """Vectors for ``texts``: float32 ``(n, dim)``, or CSR float32 ``(n, dim)`` if sparse."""
        check_is_fitted(self, "is_fitted_", msg="This %(name)s is not fitted yet; call fit(texts) first.")
        return self._encode(check_texts(texts, allow_empty=True))

    def transform(self, texts: Any) -> Any:
        return self.encode(texts)

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of every vector ``encode`` returns."""

    @abstractmethod
    def _fit(self, texts: list[str]) -> None: ...

    @abstractmethod
    def _encode(self, texts: list[str]) -> Any: ...

    @abstractmethod
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters and learned scalars, and the learned arrays."""

    @classmethod
    @abstractmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> Encoder: ...

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the encoder to the folder ``path`` as a new version; returns the path.

        ``path`` must be new, empty or an encoder folder (``force``: see
        :func:`simtools.folders.check_output`).
        """
        check_is_fitted(self, "is_fitted_", msg="This %(name)s is not fitted yet; call fit(texts) first.")
        with save_folder(path, kind="encoder", force=force) as tmp:
            self.save_into(tmp)
        return Path(path)

    def save_into(self, folder: Path) -> None:
        """Write the encoder's files into an existing (temporary) folder."""
        config, arrays = self._get_state()
        write_json(folder / "config.json", {
            "kind": "encoder", "format_version": FORMAT_VERSION, "type": self.type_name,
            "dim": self.dim, "sparse": self.sparse, **config,
        })
        save_arrays(folder / ARRAYS_NAME, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Encoder:
        """Read an encoder folder written by :meth:`save` (any encoder type)."""
        return load_encoder(path)


def load_encoder(path: str | os.PathLike[str]) -> Encoder:
    """Read an encoder folder, dispatching on the ``type`` in its ``config.json``."""
    with open_folder(path, kind="encoder") as folder:
        return _load_files(folder)


def _load_files(path: Path) -> Encoder:
    config = read_config(path, kind="encoder", versions=(FORMAT_VERSION,))
    type_name = config.get("type")
    if type_name not in _REGISTRY:
        raise FormatError(f"{path} holds an encoder of unknown type {type_name!r}; "
                          f"known types: {', '.join(sorted(_REGISTRY))}")
    module_name, _, class_name = _REGISTRY[type_name].partition(":")
    klass = getattr(importlib.import_module(module_name), class_name)
    try:
        from_folder = getattr(klass, "_from_folder", None)
        if from_folder is not None:  # an encoder that keeps its state as files of its own
            encoder = from_folder(path, config)
        else:
            encoder = klass._from_state(config, load_arrays(member(path, ARRAYS_NAME)))
    except (KeyError, TypeError, ValueError) as e:
        raise FormatError(f"{path} has an inconsistent encoder config or arrays ({e})") from e
    encoder.is_fitted_ = True
    return encoder
