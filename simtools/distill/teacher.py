"""The teacher: an ensemble of classifiers that see the texts in different ways (training only).

Members (each a :class:`TeacherMember`):

- sentence-embedding members: a packaged MiniLM model (:mod:`simtools.encoders.teacher`) turns
  a text into a 384-d vector and a trained head classifies it (multinomial logistic regression,
  or a one-hidden-layer MLP);
- sparse members: TF-IDF word n-grams or character n-grams with a linear classifier
  (logistic regression, or SGD on the log loss);
- seed copies: ``name*3`` builds three members of one kind that differ only in their random
  seed (Hinton et al.'s ensembles of identically built nets).

Combination: the ensemble's logits are the (weighted) mean of the members' log-probabilities.
``softmax(logits)`` is therefore the normalised geometric mean of the members' probabilities;
``predict_logits`` returns the mean itself, so a student can divide it by a temperature. A
member's probabilities are clipped at 1e-7 before the log, so one over-confident member cannot
veto a class with ``-inf``.

Sentence embeddings (and, for ensembles with such members, the ensemble's logits) are cached
on disk by :class:`~simtools.distill.cache.TeacherCache`, keyed by model identity and text.

:func:`make_teacher` builds the usual ensembles: ``"default"`` (both MiniLM models, word and
character n-grams, three seed copies of an MLP head), ``"sparse"`` (n-gram members only: no
ONNX, seconds to fit; for tests and quick runs) or a comma list of member names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._math import softmax
from .._validation import check_texts
from .cache import ENSEMBLE_CACHE_PREFIX, TeacherCache
from .members import (
    _RECIPE_VERSION,
    MEMBER_KINDS,
    SPECS,
    EmbeddingMember,
    EmbeddingSource,
    Progress,
    SparseMember,
    TeacherMember,
)

__all__ = [
    "MEMBER_KINDS",
    "SPECS",
    "EmbeddingMember",
    "EmbeddingSource",
    "SparseMember",
    "TeacherEnsemble",
    "TeacherMember",
    "make_teacher",
]

logger = logging.getLogger(__name__)

#: Cache model ids of fitted ensembles start with this: one store per fitted ensemble (its
#: fingerprint), cheap to recompute, unlike the sentence-embedding stores.


def _digest_texts(texts: list[str], labels: list[Any]) -> str:
    h = hashlib.sha1()
    for text, label in zip(texts, labels, strict=True):
        h.update(text.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
        h.update(str(label).encode("utf-8"))
        h.update(b"\1")
    return h.hexdigest()


class TeacherEnsemble:
    """Members trained on the same labelled texts; predictions are averaged log-probabilities.

    Parameters
    ----------
    members : the :class:`TeacherMember` objects (names must be distinct).
    weights : one non-negative weight per member (default: equal). A kind with three seed
        copies thus weighs three times as much as a single member, as in Hinton et al.
    cache : where slow outputs are cached; None: no disk cache for the ensemble's logits.
    cache_logits : cache ``predict_logits`` per text (default: when a member is slow).
    progress : ``progress(stage, done, total)`` while fitting and predicting.
    """

    def __init__(self, members: Sequence[TeacherMember], *, weights: Sequence[float] | None = None,
                 cache: TeacherCache | None = None, cache_logits: bool | None = None,
                 progress: Progress | None = None) -> None:
        members = list(members)
        if not members:
            raise ValueError("a TeacherEnsemble needs at least one member; see make_teacher()")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"member names must be distinct, got {names}")
        if weights is not None:
            weights = [float(w) for w in weights]
            if len(weights) != len(members) or min(weights) < 0 or sum(weights) <= 0:
                raise ValueError(f"weights must be {len(members)} non-negative numbers with a "
                                 f"positive sum, got {weights}")
        self.members = members
        self.weights = weights
        self.cache = cache
        self.cache_logits = cache_logits
        self.progress = progress

    def __repr__(self) -> str:
        return f"TeacherEnsemble([{', '.join(m.name for m in self.members)}])"

    @property
    def member_names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def labels(self) -> list[str]:
        """Class names, in the column order of ``predict_logits``."""
        self._check_fitted()
        return list(self.labels_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "labels_"):
            raise RuntimeError("this TeacherEnsemble is not fitted yet; call fit(texts, labels)")

    def _report(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def fit(self, texts: Sequence[str], labels: Sequence[Any]) -> TeacherEnsemble:
        """Train every member on ``texts`` and their ``labels`` (any hashable; kept as str)."""
        texts = check_texts(texts)
        labels = list(labels)
        if len(labels) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(labels)} labels; give one label "
                             "per text")
        classes = sorted(set(labels), key=lambda v: (str(type(v)), v))
        if len(classes) < 2:
            raise ValueError(f"need at least 2 classes to train a teacher, got {classes}")
        self.labels_ = [str(c) for c in classes]
        if len(set(self.labels_)) != len(classes):
            raise ValueError(f"labels {classes} collide once turned into strings; use distinct "
                             "names")
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[v] for v in labels], dtype=np.int64)
        for i, member in enumerate(self.members):
            logger.info("fitting teacher member %s (%d/%d) on %d texts", member.name, i + 1,
                        len(self.members), len(texts))
            self._report(f"fit {member.name}", i, len(self.members))
            member.fit(texts, y, len(classes))
        self._report("fit", len(self.members), len(self.members))
        import sklearn

        ident = {"recipe": _RECIPE_VERSION, "sklearn": sklearn.__version__,
                 "members": [[m.name, m.identity()] for m in self.members],
                 "weights": self.weights, "labels": self.labels_,
                 "data": _digest_texts(texts, labels)}
        self.fingerprint_ = hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()
        return self

    def _member_log_probs(self, texts: list[str]) -> list[np.ndarray]:
        out = []
        for i, member in enumerate(self.members):
            self._report(f"predict {member.name}", i, len(self.members))
            out.append(member.predict_log_proba(texts))
        return out

    def _combine(self, log_probs: list[np.ndarray]) -> np.ndarray:
        w = np.ones(len(log_probs)) if self.weights is None else np.asarray(self.weights)
        stacked = np.stack(log_probs).astype(np.float64)
        mean = np.tensordot(w / w.sum(), stacked, axes=1)
        return np.ascontiguousarray(mean, dtype=np.float32)

    def _compute_logits(self, texts: list[str]) -> np.ndarray:
        return self._combine(self._member_log_probs(texts))

    def predict_logits(self, texts: Sequence[str]) -> np.ndarray:
        """Ensemble logits, float32 ``(n, n_classes)``, columns in the order of :attr:`labels`.

        Each row is the weighted mean of the members' log-probabilities (softmax of it is the
        normalised geometric mean of their probabilities).
        """
        self._check_fitted()
        texts = check_texts(texts, allow_empty=True)
        use_cache = self.cache_logits
        if use_cache is None:
            use_cache = any(m.slow for m in self.members)
        if self.cache is None or not use_cache:
            return self._compute_logits(texts)
        return self.cache.get_or_compute(f"{ENSEMBLE_CACHE_PREFIX}{self.fingerprint_}", texts,
                                         self._compute_logits)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """``softmax(predict_logits(texts))``: float32 ``(n, n_classes)``."""
        return softmax(self.predict_logits(texts).astype(np.float64)).astype(np.float32)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most likely label of each text."""
        return [self.labels_[i] for i in self.predict_logits(texts).argmax(axis=1)]

    def embedding_source(self) -> EmbeddingSource:
        """The MiniLM-L6 embedding source (else the first embedding source) of the ensemble."""
        sources = [m.source for m in self.members if isinstance(m, EmbeddingMember)]
        if not sources:
            raise ValueError(f"this teacher ({', '.join(self.member_names)}) has no sentence-"
                             "embedding member, so it cannot embed texts; build it with "
                             "make_teacher('default') or add 'minilm-lr' to the spec")
        for source in sources:
            if source.model == "minilm":
                return source
        return sources[0]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised sentence embeddings, float32 ``(n, 384)``, from the MiniLM-L6 member."""
        source = self.embedding_source()
        return source.embed(check_texts(texts, allow_empty=True))

    def member_scores(self, texts: Sequence[str], labels: Sequence[Any]) -> dict[str, float]:
        """Macro-F1 of every member and of the ensemble (key ``"ensemble"``) on ``texts``."""
        from sklearn.metrics import f1_score

        self._check_fitted()
        texts = check_texts(texts, allow_empty=True)
        labels = [str(v) for v in labels]
        if len(labels) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
        index = {c: i for i, c in enumerate(self.labels_)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise ValueError(f"labels {unknown[:5]} were not seen in fit; known labels are "
                             f"{self.labels_}")
        y = np.array([index[v] for v in labels], dtype=np.int64)
        log_probs = self._member_log_probs(texts)
        every = list(range(len(self.labels_)))
        scores = {m.name: float(f1_score(y, lp.argmax(axis=1), average="macro", labels=every))
                  for m, lp in zip(self.members, log_probs, strict=True)}
        ensemble = self._combine(log_probs).argmax(axis=1)
        scores["ensemble"] = float(f1_score(y, ensemble, average="macro", labels=every))
        return scores


def _parse_spec(spec: str) -> list[tuple[str, int]]:
    text = SPECS.get(spec.strip().lower(), spec)
    items: list[tuple[str, int]] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        name, _, copies = item.partition("*")
        name = name.strip()
        if name not in MEMBER_KINDS:
            valid = ", ".join([*SPECS, *MEMBER_KINDS])
            raise ValueError(f"unknown teacher member {name!r} in spec {spec!r}; valid names are "
                             f"{valid} (a comma list; 'name*3' adds three seed copies)")
        try:
            n = int(copies) if copies else 1
        except ValueError:
            raise ValueError(f"bad copy count {copies!r} in {item!r}; write e.g. "
                             f"'{name}*3'") from None
        if n < 1:
            raise ValueError(f"copy count must be at least 1 in {item!r}")
        items.append((name, n))
    if not items:
        raise ValueError(f"teacher spec {spec!r} names no member; e.g. 'sparse' or 'word-lr,char-lr'")
    return items


def make_teacher(spec: str = "default", *, seed: int = 0,
                 cache_dir: str | os.PathLike[str] | bool | None = None,
                 batch_size: int = 64, num_threads: int | None = None,
                 progress: Progress | None = None) -> TeacherEnsemble:
    """Build an unfitted :class:`TeacherEnsemble` from a spec.

    ``spec``: ``"default"`` (MiniLM-L6 int8 + paraphrase-MiniLM-L3 logistic heads, word and
    character n-gram logistic regressions, three seeded MLP heads on MiniLM), ``"sparse"``
    (word and character n-grams, three seeded SGD word models: no ONNX) or a comma list of
    names from :data:`MEMBER_KINDS`, where ``name*3`` adds three seed copies.

    ``cache_dir``: where embeddings and logits are cached; None: ``$SIMTOOLS_CACHE_DIR/teacher`` or
    ``~/.cache/simtools/teacher``; False: no disk cache. ``seed`` seeds every member (copy
    ``k`` of a kind gets ``seed + k``).
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a str, got {type(spec).__name__}")
    items = _parse_spec(spec)
    if cache_dir is False:
        cache = None
    elif isinstance(cache_dir, TeacherCache):
        cache = cache_dir
    else:
        cache = TeacherCache(None if cache_dir in (None, True) else cache_dir)  # type: ignore[arg-type]
    sources: dict[str, EmbeddingSource] = {}
    members: list[TeacherMember] = []
    for name, copies in items:
        kind, options = MEMBER_KINDS[name]
        for k in range(copies):
            member_name = name if copies == 1 else f"{name}-s{k}"
            if kind == "sparse":
                members.append(SparseMember(member_name, seed=seed + k, **options))
            else:
                model = options["model"]
                if model not in sources:
                    sources[model] = EmbeddingSource(model, cache=cache, batch_size=batch_size,
                                                     num_threads=num_threads, progress=progress)
                members.append(EmbeddingMember(member_name, sources[model], head=options["head"],
                                               seed=seed + k))
    return TeacherEnsemble(members, cache=cache, progress=progress)
