"""The metrics lesson: one query against candidates under every metric, side by side.

On raw counts, Euclidean distance grows with a text's length, so a short query is "nearest" to
the shortest candidate whatever its topic; cosine compares direction only and finds the topical
one; normalised Euclidean ranks exactly as cosine. :func:`compare_texts` and
:func:`compare_index` make that visible for any encoder or index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_texts
from .errors import InputError
from .metrics import Metric, pairwise

__all__ = ["COMPARED", "Comparison", "compare_index", "compare_texts"]

#: The metrics compared, by name (the lesson: raw length against direction).
COMPARED = {m.value: m for m in (Metric.EUCLIDEAN, Metric.COSINE, Metric.NORMALIZED_EUCLIDEAN)}


@dataclass
class Comparison:
    """Scores of every candidate under each metric, and the candidate each metric picks."""

    query: str
    names: list[str]  # the candidates' texts or titles
    scores: dict[str, np.ndarray]  # metric -> (n_candidates,) float
    lengths: np.ndarray  # vector norm of every candidate: how "long" it is to Euclidean

    @property
    def nearest(self) -> dict[str, int]:
        """For each metric, the 0-based index of the nearest candidate."""
        return {metric: int(np.argmax(s) if COMPARED[metric].higher_is_better else np.argmin(s))
                for metric, s in self.scores.items()}

    def to_dict(self, *, key: str = "text") -> dict[str, Any]:
        return {"query": self.query,
                "candidates": [{key: name, **{m: float(self.scores[m][i]) for m in COMPARED}}
                               for i, name in enumerate(self.names)],
                "nearest": self.nearest}


def _compare(query: str, q: Any, X: Any, names: list[str]) -> Comparison:
    from .metrics import row_norms

    if row_norms(q)[0] == 0:
        raise InputError(f"the query {query[:60]!r} has no token the encoder knows, so it has no "
                         "direction to compare; use other words or a character n-gram encoder")
    scores = {m: pairwise(q, X, metric=COMPARED[m].pairwise_name)[0].astype(np.float64) for m in COMPARED}
    return Comparison(query, names, scores, row_norms(X))


def compare_texts(query: str, candidates: list[str], encoder: Any = "count") -> Comparison:
    """Compare ``query`` with each candidate text; an unfitted encoder is fitted on all texts."""
    texts = [*check_texts([query], name="query"), *check_texts(candidates, name="candidates")]
    if isinstance(encoder, str):
        from .encoders import make_encoder

        encoder = make_encoder(encoder)
    if not getattr(encoder, "is_fitted_", False):
        encoder.fit(texts)
    vectors = encoder.encode(texts)
    return _compare(query, vectors[:1], vectors[1:], texts[1:])


def compare_index(index: Any, query: str) -> Comparison:
    """Compare ``query`` with every document of an exact index, using the index's encoder."""
    if index.encoder is None:
        raise InputError("this index has no encoder (it was built from vectors); cannot encode text")
    q = index.encoder.encode(check_texts([query], name="query"))
    names = [_name(t, i) for t, i in zip(index.titles, index.ids)]
    return _compare(query, q, index.stored_vectors(raw=True), names)


def _name(title: Any, doc_id: str) -> str:
    """A document's title as text (its id when it has none): titles added through the library
    may be numbers or objects, and a name is printed and cut like text."""
    if title is None:
        return str(doc_id)
    if isinstance(title, str):
        return title
    import json

    return json.dumps(title, ensure_ascii=False, default=str)
