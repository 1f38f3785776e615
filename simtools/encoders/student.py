"""The distilled students as index encoders: compact, numpy-only sentence vectors.

- :class:`EmbeddingStudentEncoder` (``--encoder student``, ``make_encoder("student")``): the
  embedding student, made for the teacher's geometry (default: the bundled English model,
  ``simtools/models/minilm-static``);
- :class:`StudentEncoder`: the pooled vectors of a student *classifier* (a model folder written
  by ``simtools distill``; default: the bundled BBC News model).

``make_encoder("student:DIR")`` reads the folder's kind and wraps it in the matching class.
A classifier trained with the ``embedding`` method maps texts into a fixed PCA of the teacher's
embedding space; without it its vectors are the mean-pooled n-gram embeddings, shaped by the
classification task only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..persistence import FormatError, load_arrays, member, write_json
from ..student.embedding import EmbeddingStudent
from ..student.kinds import CLASSIFIER_TYPE, ModelKindError
from ..student.model import StudentClassifier
from .base import ARRAYS_NAME, FORMAT_VERSION, Encoder

#: the student inside a student encoder's folder, in the model format (``simtools classify
#: --model`` reads it as it is)
MODEL_FOLDER = "model"

__all__ = ["EmbeddingStudentEncoder", "StudentEncoder", "student_encoder"]


class _ModelEncoder(Encoder):
    """An encoder that wraps one student model folder (``model_path``; None: the bundled one)
    and saves it inside its own folder as ``model/``. ``fit`` learns nothing: it loads."""

    model_class: ClassVar[Any]

    def __init__(self, model_path: str | None = None) -> None:
        self.model_path = model_path

    @classmethod
    def from_model(cls, path: str | os.PathLike[str] | None = None) -> Any:
        """An encoder ready to use, wrapping the model folder at ``path``."""
        encoder = cls(model_path=None if path is None else str(path))
        encoder.model_ = cls.model_class.load(path)
        encoder.is_fitted_ = True
        return encoder

    @property
    def dim(self) -> int:
        model = getattr(self, "model_", None)
        if model is None:
            raise AttributeError(f"this {type(self).__name__} is not fitted yet; call fit(texts) "
                                 f"or use {type(self).__name__}.from_model(path)")
        return int(model.embedding_dim)

    def _fit(self, texts: list[str]) -> None:
        self.model_ = self.model_class.load(self.model_path)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model_.embed(texts)

    def save_into(self, folder: Path) -> None:
        """The encoder's config, and the model itself in its own format, as ``model/``."""
        write_json(folder / "config.json", {
            "kind": "encoder", "format_version": FORMAT_VERSION, "type": self.type_name,
            "dim": self.dim, "sparse": self.sparse, "model_path": self.model_path})
        (folder / MODEL_FOLDER).mkdir()
        self.model_.save_into(folder / MODEL_FOLDER)

    @classmethod
    def _from_model_folder(cls, folder: Path, config: dict[str, Any]) -> Any:
        model_folder = folder / MODEL_FOLDER
        if not model_folder.is_dir() or model_folder.is_symlink():
            return None
        encoder = cls(model_path=config.get("model_path"))
        encoder.model_ = cls.model_class._load_files(model_folder)
        return encoder


class StudentEncoder(_ModelEncoder):
    """Texts -> L2-normalised vectors of a student classifier, float32 ``(n, embedding_dim)``.

    A text without a single token (empty, whitespace) gets the zero vector.
    """

    type_name: ClassVar[str] = "student"
    model_class = StudentClassifier

    @classmethod
    def _from_folder(cls, folder: Path, config: dict[str, Any]) -> StudentEncoder:
        encoder = cls._from_model_folder(folder, config)
        if encoder is not None:
            return encoder  # type: ignore[no-any-return]
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


class EmbeddingStudentEncoder(_ModelEncoder):
    """Texts -> L2-normalised vectors of an embedding student (static token vectors of the
    teacher's vocabulary, fine-tuned on the teacher's sentence embeddings), float32
    ``(n, dim)``: what ``--encoder student`` builds.

    A text the model cannot place (blank; no letter or digit in the scripts of its training
    texts, such as Hangul or emoji alone) gets the zero vector, so an index leaves it out and
    a search answers it UNKNOWN, as ``simtools classify`` does.
    """

    type_name: ClassVar[str] = "student-embedding"
    model_class = EmbeddingStudent

    @classmethod
    def _from_folder(cls, folder: Path, config: dict[str, Any]) -> EmbeddingStudentEncoder:
        encoder = cls._from_model_folder(folder, config)
        if encoder is None:
            raise FormatError(f"{folder / MODEL_FOLDER} is missing or not a folder; the encoder "
                              "folder is incomplete")
        return encoder  # type: ignore[no-any-return]

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        raise NotImplementedError("an embedding student encoder saves its model as files "
                                  "(save_into)")

    @classmethod
    def _from_state(cls, config: dict[str, Any],
                    arrays: dict[str, np.ndarray]) -> EmbeddingStudentEncoder:
        raise NotImplementedError("an embedding student encoder loads from its folder")


def student_encoder(path: str | os.PathLike[str] | None = None) -> _ModelEncoder:
    """The encoder of ``student[:DIR]``: the embedding model at ``path`` (None: the bundled
    English one), or, for a classifier folder, that classifier's pooled vectors."""
    try:
        return EmbeddingStudentEncoder.from_model(path)  # type: ignore[no-any-return]
    except ModelKindError as e:
        if e.found != CLASSIFIER_TYPE:
            raise
        return StudentEncoder.from_model(path)  # type: ignore[no-any-return]
