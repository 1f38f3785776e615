"""The kinds of student model folder, and the checks both kinds share on load and on input.

Two students live in ``config.json`` folders of kind "model": the classifier (``type``
"student", from ``simtools distill``) and the embedding model (``type`` "student-embedding",
texts to vectors, no labels). Each loader refuses the other kind with one line that names the
right loader; the CLI words that advice as flags.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import numpy as np

from ..errors import FormatError
from ..persistence import load_arrays, member, read_config, read_json
from .featurizer import N_PAGES

__all__ = ["CLASSIFIER_TYPE", "EMBEDDING_TYPE", "ModelKindError", "as_texts", "check_model_type",
           "check_pages", "open_model", "read_model_files"]

T = TypeVar("T")
CLASSIFIER_TYPE = "student"
EMBEDDING_TYPE = "student-embedding"


class ModelKindError(FormatError):
    """A model folder of the other kind: a classifier where an embedding model is expected, or
    the reverse. ``found`` and ``expected`` are the two ``type`` values."""

    def __init__(self, message: str, *, found: str, expected: str) -> None:
        super().__init__(message)
        self.found = found
        self.expected = expected


def check_model_type(path: Path, config: dict[str, Any], expected: str) -> None:
    """Raise unless ``config`` (of the folder at ``path``) is of type ``expected``."""
    found = config.get("type")
    if found == expected:
        return
    if found == CLASSIFIER_TYPE and expected == EMBEDDING_TYPE:
        labels = ", ".join(map(str, list(config.get("labels") or [])[:5]))
        raise ModelKindError(
            f"{path} holds a student classifier (labels {labels}), not an embedding model; "
            "load it with StudentClassifier.load, or give an embedding model folder",
            found=found, expected=expected)
    if found == EMBEDDING_TYPE and expected == CLASSIFIER_TYPE:
        raise ModelKindError(
            f"{path} holds an embedding model (texts to vectors, no labels), not a classifier; "
            "use it as an encoder (encoder='student:PATH'), and classify with a model from "
            "distillation", found=found, expected=expected)
    raise FormatError(f"{path} holds a model of type {found!r}, expected {expected!r}")


def open_model(path: str | os.PathLike[str] | None, default: Path,
               load_files: Callable[[Path], T]) -> T:
    """``load_files`` on the current version of the model folder ``path`` (None: ``default``),
    held open (locked against a concurrent save) while it reads."""
    from ..folders import open_folder

    with open_folder(path if path is not None else default, kind="model") as folder:
        return load_files(folder)


def read_model_files(path: Path, expected: str, *, versions: tuple[int, ...],
                     weights: str = "model.safetensors", history: str = "history.json"
                     ) -> tuple[dict[str, Any], dict[str, np.ndarray], list[Any]]:
    """``(config, arrays, history)`` of the model folder version at ``path``, after checking
    its kind, format version and type (``expected``)."""
    config = read_config(path, kind="model", versions=versions)
    check_model_type(path, config, expected)
    arrays = load_arrays(member(path, weights))
    history_file = member(path, history, required=False)
    return config, arrays, read_json(history_file) if os.path.lexists(history_file) else []


def check_pages(pages: Any) -> None:
    """``known_pages`` must be None or a list of code-point pages (ints in 0..N_PAGES-1)."""
    in_range = isinstance(pages, list) and all(
        isinstance(p, int) and not isinstance(p, bool) and 0 <= p < N_PAGES for p in pages)
    if pages is not None and not in_range:
        raise FormatError(f"known_pages must be a list of code-point pages from 0 to "
                          f"{N_PAGES - 1}; got {str(pages)[:60]}")


def as_texts(texts: Any) -> list[str]:
    """``texts`` as a list of str (a bare string or a non-str item is a TypeError)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"texts must be a list of strings, not a single {type(texts).__name__}; "
                        f"wrap it in a list: [{texts!r:.40}]")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is a {type(text).__name__}, expected str")
    return out


def bundled_model(name: str) -> Path:
    """The folder of a model shipped inside the package (``simtools/models/<name>``)."""
    return Path(__file__).resolve().parents[1] / "models" / name


class ModelFolder:
    """Saving and loading of a model that is a folder of versions (``config.json``, weights,
    history), around each class's own files.

    A class sets ``model_type``, ``format_versions``, ``description`` (for errors) and
    ``bundled`` (its folder under ``simtools/models``), and defines ``save_into(folder)`` and
    ``_from_files(path, config, arrays, history)``.
    """

    bundled: ClassVar[str]
    model_type: ClassVar[str]
    format_versions: ClassVar[tuple[int, ...]]
    description: ClassVar[str]

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write the model folder as a new version; returns the path.

        ``path`` must be new, empty or a model folder (``force``: see
        :func:`simtools.folders.check_output`).
        """
        from ..folders import save_folder

        with save_folder(path, kind="model", force=force) as tmp:
            self.save_into(tmp)
        return Path(path)

    def save_into(self, folder: Path) -> None:
        raise NotImplementedError

    @classmethod
    def default_path(cls) -> Path:
        """The bundled model of this kind."""
        return bundled_model(cls.bundled)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Self:
        """Read a model folder (None: the bundled model of this kind, ``default_path()``)."""
        return open_model(path, cls.default_path(), cls._load_files)

    @classmethod
    def _load_files(cls, path: Path) -> Self:
        config, arrays, history = read_model_files(path, cls.model_type,
                                                   versions=cls.format_versions)
        try:
            return cls._from_files(path, config, arrays, history)
        except (KeyError, TypeError, ValueError) as e:
            raise FormatError(f"{path} has an inconsistent {cls.description} config or weights "
                              f"({e}); re-train or re-save it") from e

    @classmethod
    def _from_files(cls, path: Path, config: dict[str, Any], arrays: dict[str, np.ndarray],
                    history: list[Any]) -> Self:
        raise NotImplementedError
