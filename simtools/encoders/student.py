"""The distilled student as an index encoder: compact, numpy-only sentence vectors.

It wraps a model folder written by ``simtools distill`` (default: the bundled BBC News model).
A student trained with the ``embedding`` method maps texts into a fixed PCA of the teacher's
embedding space, so k-NN over its vectors approximates k-NN over the teacher's; without it the
vectors are the mean-pooled n-gram embeddings, shaped by the classification task only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..persistence import load_arrays, member, write_json
from ..student.model import StudentClassifier
from .base import ARRAYS_NAME, FORMAT_VERSION, Encoder

#: the student inside a student encoder's folder, in the model format (``simtools classify
#: --model`` reads it as it is)
MODEL_FOLDER = "model"

__all__ = ["StudentEncoder"]


class StudentEncoder(Encoder):
    """Texts -> L2-normalised student vectors, float32 ``(n, embedding_dim)``.

    ``model_path`` names a student model folder (None: the bundled model). ``fit`` learns
    nothing from the texts: it loads the model. A text without a single token (empty,
    whitespace) gets the zero vector.
    """

    type_name: ClassVar[str] = "student"

    def __init__(self, model_path: str | None = None) -> None:
        self.model_path = model_path

    @classmethod
    def from_model(cls, path: str | os.PathLike[str] | None = None) -> StudentEncoder:
        """An encoder ready to use, wrapping the model folder at ``path``."""
        encoder = cls(model_path=None if path is None else str(path))
        encoder.model_ = StudentClassifier.load(path)
        encoder.is_fitted_ = True
        return encoder

    @property
    def dim(self) -> int:
        model = getattr(self, "model_", None)
        if model is None:
            raise AttributeError("this StudentEncoder is not fitted yet; call fit(texts) or "
                                 "use StudentEncoder.from_model(path)")
        return model.embedding_dim

    def _fit(self, texts: list[str]) -> None:
        self.model_ = StudentClassifier.load(self.model_path)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model_.embed(texts)

    def save_into(self, folder: Path) -> None:
        """The encoder's config, and the student itself in its one format, as ``model/``."""
        write_json(folder / "config.json", {
            "kind": "encoder", "format_version": FORMAT_VERSION, "type": self.type_name,
            "dim": self.dim, "sparse": self.sparse, "model_path": self.model_path})
        (folder / MODEL_FOLDER).mkdir()
        self.model_.save_into(folder / MODEL_FOLDER)

    @classmethod
    def _from_folder(cls, folder: Path, config: dict[str, Any]) -> StudentEncoder:
        model_folder = folder / MODEL_FOLDER
        if model_folder.is_dir() and not model_folder.is_symlink():
            encoder = cls(model_path=config.get("model_path"))
            encoder.model_ = StudentClassifier._load_files(model_folder)
            return encoder
        # folders of simtools 0.1: the model's arrays in the encoder's own safetensors file
        return cls._from_state(config, load_arrays(member(folder, ARRAYS_NAME)))

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        model = self.model_
        config = {"model_path": self.model_path, "labels": model.labels,
                  "featurizer": model.featurizer.params(),
                  "training": model.config.get("training", {})}
        return config, model.arrays()

    @classmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> StudentEncoder:
        encoder = cls(model_path=config.get("model_path"))
        encoder.model_ = StudentClassifier.from_state(config, arrays)
        return encoder

    def to_model(self, path: str | os.PathLike[str]) -> Path:
        """Save the wrapped student as a model folder (for ``simtools classify --model``)."""
        return self.model_.save(path)
