"""Distances and similarities between vectors, dense (numpy) and sparse (scipy), never densified.

For vectors ``a`` and ``b``:

- ``euclidean``: ``||a - b||``; grows with the length of a text when ``a`` holds raw counts.
- ``cosine_similarity``: ``a.b / (||a|| ||b||)``; ``cosine_distance`` is ``1 - cosine_similarity``.
- ``normalized_euclidean``: ``||a/||a|| - b/||b||||``, which equals ``sqrt(2 - 2 cos(a, b))`` and
  so ranks exactly as cosine does; ``normalized_euclidean_similarity`` is ``1 - that``.
- ``inner_product``: ``a.b``.

Zero vectors (a text with no known token) have no direction. We define their cosine similarity
to anything, themselves included, as 0 (orthogonal), the convention of
``sklearn.metrics.pairwise.cosine_similarity``; so their cosine distance is 1 and their
normalised Euclidean distance ``sqrt(2)``. No function here returns NaN for finite input;
NaN or infinity in the input is an :class:`~simtools.errors.InputError`, as in the index.

Norms never overflow nor underflow: a row whose sum of squares leaves the range of its dtype
(``[3e38, 3e38]`` in float32, ``[1e-30, 1e-30]``) is computed again in float64, scaled by its
largest ``|x|`` first; every other row takes the fast path, one dot product in its own dtype.

This module is the floor of the package: it imports nothing else of ours but the error types.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np

from .errors import InputError


def _issparse(X: Any) -> bool:
    # scipy is imported only once a sparse matrix is around: `import simtools.metrics` (and the
    # CLI's option lists built from Metric) stays numpy-only.
    return hasattr(X, "tocsr") and hasattr(X, "nnz")

__all__ = [
    "Metric",
    "PAIRWISE_METRICS",
    "cosine_distance",
    "cosine_similarity",
    "euclidean",
    "l2_normalize",
    "normalized_euclidean",
    "normalized_euclidean_similarity",
    "pairwise",
    "row_norms",
]


class Metric(str, Enum):
    """How an index ranks neighbours; its ``score`` is what a search reports."""

    COSINE = "cosine"  # score: cosine similarity, higher is nearer
    EUCLIDEAN = "euclidean"  # score: Euclidean distance, lower is nearer
    NORMALIZED_EUCLIDEAN = "normalized_euclidean"  # score: 1 - distance of unit vectors
    INNER_PRODUCT = "inner_product"  # score: dot product, higher is nearer

    @classmethod
    def choices(cls) -> list[str]:
        """Every metric's name, for option lists (the CLI's ``--metric``)."""
        return [m.value for m in cls]

    @property
    def higher_is_better(self) -> bool:
        """Whether a higher score is nearer (all but Euclidean distance)."""
        return self is not Metric.EUCLIDEAN

    @property
    def normalizes(self) -> bool:
        """Whether vectors are L2-normalised before they are stored or searched."""
        return self in (Metric.COSINE, Metric.NORMALIZED_EUCLIDEAN)

    @property
    def pairwise_name(self) -> str:
        """The :func:`pairwise` metric that computes this metric's score."""
        return _PAIRWISE_SCORE[self]

    def score_from_inner(self, raw: np.ndarray) -> np.ndarray:
        """A backend's raw scores (inner product of unit vectors for cosine and normalised
        Euclidean, squared L2 for Euclidean, the dot product otherwise) as this metric's score."""
        if self is Metric.EUCLIDEAN:
            return np.sqrt(np.maximum(raw, 0))
        if self is Metric.NORMALIZED_EUCLIDEAN:
            return 1.0 - np.sqrt(np.maximum(2.0 - 2.0 * raw, 0))
        if self is Metric.COSINE:
            return np.clip(raw, -1.0, 1.0)
        return raw

    def nearness(self, scores: np.ndarray) -> np.ndarray:
        """Scores turned into "higher is nearer" values."""
        return scores if self.higher_is_better else -scores

    def distances(self, scores: np.ndarray) -> np.ndarray:
        """Scores of each row (a query's neighbours) turned into non-negative distances:
        Euclidean as it is, ``1 - score`` for cosine and normalised Euclidean, and for inner
        product the gap to the row's best score."""
        if self is Metric.EUCLIDEAN:
            return scores
        if self is Metric.INNER_PRODUCT:
            return scores.max(axis=1, keepdims=True) - scores
        return 1.0 - scores


_PAIRWISE_SCORE = {Metric.COSINE: "cosine_similarity", Metric.EUCLIDEAN: "euclidean",
                   Metric.NORMALIZED_EUCLIDEAN: "normalized_euclidean_similarity",
                   Metric.INNER_PRODUCT: "inner_product"}


def _as_matrix(X: Any) -> Any:
    if _issparse(X):
        import scipy.sparse as sp

        X = sp.csr_matrix(X)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        return X
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise InputError(f"expected a vector or a matrix of shape (n, dim), got shape {X.shape}")
    return X


def _check_finite(X: Any, name: str) -> None:
    values = X.data if _issparse(X) else X
    if not np.isfinite(values).all():
        raise InputError(f"{name} contains NaN or infinity, which has no distance; clean or drop "
                         "those rows first")


def _canonical_csr(X: Any) -> Any:
    """CSR with each entry once (duplicates summed), copied only when that changes it."""
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    return X


def _row_of_entries(X: Any) -> np.ndarray:
    return np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))


def _safe_range(dtype: Any) -> tuple[float, float]:
    """Sums of squares that the fast path computes to full precision: above the first bound no
    square has lost digits to underflow, below the second none has overflowed."""
    info = np.finfo(dtype)
    return float(info.tiny / info.eps), float(info.max)


def _not_finite() -> InputError:
    return InputError("the vectors contain NaN or infinity, which have no norm; clean or drop "
                      "those rows first")


def _dense_rescaled(R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(R / peak, peak)`` in float64, ``peak`` the largest ``|x|`` of each row (0 for a zero
    row, which stays zero): the rescaled sums of squares lie in ``[1, dim]``."""
    R = R.astype(np.float64)
    if not np.isfinite(R).all():
        raise _not_finite()
    peak = np.abs(R).max(axis=1) if R.shape[1] else np.zeros(len(R))
    np.divide(R, peak[:, None], out=R, where=peak[:, None] > 0)
    return R, peak


def _sparse_rescaled(X: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries of CSR rows ``rows`` over their row's peak (float64), the position in
    ``rows`` of each entry's row, and the peaks."""
    part = X[rows]
    values = part.data.astype(np.float64)
    if not np.isfinite(values).all():
        raise _not_finite()
    of = _row_of_entries(part)
    peak = np.zeros(len(rows))
    np.maximum.at(peak, of, np.abs(values))
    np.divide(values, peak[of], out=values, where=peak[of] > 0)
    return values, of, peak


def row_norms(X: Any) -> np.ndarray:
    """Euclidean norm of every row of a dense or sparse matrix, float64 ``(n,)``.

    NaN or infinity in X is an InputError; finite rows never overflow or underflow (a norm
    beyond float64, above 1.8e308, is infinite).
    """
    X = _as_matrix(X)
    # The fast path may overflow or underflow: such rows are found and redone, so no warning.
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return _row_norms(X)


def _row_norms(X: Any) -> np.ndarray:
    if _issparse(X):
        X = _canonical_csr(X)
        squares = np.square(X.data, dtype=np.float64)
        sums = np.bincount(_row_of_entries(X), weights=squares, minlength=X.shape[0])
        low, high = _safe_range(np.float64)
        redo = np.flatnonzero(~(sums <= high) | ((sums < low) & (np.diff(X.indptr) > 0)))
        norms = np.sqrt(sums)
        if len(redo):
            values, of, peak = _sparse_rescaled(X, redo)
            norms[redo] = peak * np.sqrt(np.bincount(of, weights=values * values,
                                                     minlength=len(redo)))
        return norms
    sums = np.einsum("ij,ij->i", X, X)
    low, high = _safe_range(X.dtype)
    # Zero rows are redone too: as cheap as telling them from rows whose squares underflowed.
    redo = np.flatnonzero(~((sums >= low) & (sums <= high)))
    norms = np.sqrt(sums, dtype=np.float64)
    if len(redo):
        R, peak = _dense_rescaled(X[redo])
        norms[redo] = peak * np.sqrt(np.einsum("ij,ij->i", R, R))
    return norms


def l2_normalize(X: Any, norms: np.ndarray | None = None) -> Any:
    """Rows scaled to unit length; zero rows stay zero. Sparse stays sparse (CSR).

    ``norms`` (from :func:`row_norms`) saves computing them again.
    """
    X = _as_matrix(X)
    n = X.shape[0]
    if norms is None:
        norms = row_norms(X)
    norms = np.asarray(norms, dtype=np.float64)
    if norms.shape != (n,) or np.isnan(norms).any():
        got = f"shape {norms.shape}" if norms.shape != (n,) else "NaN"
        raise InputError(f"norms must be {n} numbers, one per row of X (see row_norms()); got {got}")
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    # A scale outside X's dtype (a norm beyond 1/tiny or below 1/max, or an infinite one) would
    # lose digits or become 0 there: those rows are divided by their peak first, in float64.
    info = np.finfo(X.dtype)
    extreme = np.flatnonzero((norms > 0) & ~((scale >= info.tiny) & (scale <= info.max)))
    if _issparse(X):
        X = _canonical_csr(X)
        row_of = _row_of_entries(X)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # extreme: redone
            data = (X.data * scale[row_of]).astype(X.dtype)
        import scipy.sparse as sp

        out = sp.csr_matrix((data, X.indices.copy(), X.indptr.copy()), shape=X.shape)
        if len(extreme):
            values, of, _ = _sparse_rescaled(X, extreme)
            sums = np.bincount(of, weights=values * values, minlength=len(extreme))
            out.data[np.isin(row_of, extreme)] = values / np.sqrt(sums[of])
        return out
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):  # extreme rows: redone
        out = X * scale.astype(X.dtype)[:, None]
    if len(extreme):
        R, _ = _dense_rescaled(X[extreme])
        out[extreme] = R / np.sqrt(np.einsum("ij,ij->i", R, R))[:, None]
    return out


def _dot(X: Any, Y: Any) -> np.ndarray:
    out = X @ Y.T
    if _issparse(out):
        out = out.toarray()
    return np.asarray(out)


def _block(X: Any, Y: Any, metric: str) -> np.ndarray:
    if metric == "inner_product":
        return _dot(X, Y)
    if metric == "euclidean":
        sq = row_norms(X)[:, None] ** 2 + row_norms(Y)[None, :] ** 2 - 2 * _dot(X, Y)
        return np.sqrt(np.maximum(sq, 0))
    cos = np.clip(_dot(l2_normalize(X), l2_normalize(Y)), -1.0, 1.0)
    if metric == "cosine_similarity":
        return cos
    if metric == "cosine_distance":
        return 1.0 - cos
    dist = np.sqrt(np.maximum(2.0 - 2.0 * cos, 0))
    if metric == "normalized_euclidean":
        return dist
    return 1.0 - dist  # normalized_euclidean_similarity


# Metrics that take a square root of a difference of nearly equal numbers: computed in float64,
# as float32 loses most digits for near neighbours (||a-b|| of two float32 vectors of norm 1e3
# one unit apart came out as 1.12).
_CANCELLING = ("euclidean", "normalized_euclidean", "normalized_euclidean_similarity")

PAIRWISE_METRICS = (
    "euclidean",
    "cosine_similarity",
    "cosine_distance",
    "normalized_euclidean",
    "normalized_euclidean_similarity",
    "inner_product",
)


def pairwise(X: Any, Y: Any | None = None, *, metric: str = "cosine_similarity",
             batch_size: int = 4096) -> np.ndarray:
    """Matrix of ``metric(X[i], Y[j])``, shape ``(len(X), len(Y))``, computed in row batches.

    ``X`` and ``Y`` may each be dense or sparse; sparse input is never densified (only the
    output block is dense). ``metric`` is one of :data:`PAIRWISE_METRICS`, named like the
    one-pair functions of this module.
    """
    if metric not in PAIRWISE_METRICS:
        raise InputError(f"unknown metric {metric!r}; valid values are {', '.join(PAIRWISE_METRICS)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer (rows of X per block), got "
                         f"{batch_size!r}")
    X = _as_matrix(X)
    _check_finite(X, "X")
    if Y is None:
        Y = X
    else:
        Y = _as_matrix(Y)
        _check_finite(Y, "Y")
    if X.shape[1] != Y.shape[1]:
        raise InputError(f"X has dimension {X.shape[1]} but Y has {Y.shape[1]}; they must match")
    dtype = np.result_type(X.dtype, Y.dtype)
    work = np.float64 if metric in _CANCELLING else dtype
    Y = Y.astype(work, copy=False)
    out = np.empty((X.shape[0], Y.shape[0]), dtype=dtype)
    for start in range(0, X.shape[0], batch_size):
        out[start:start + batch_size] = _block(X[start:start + batch_size].astype(work, copy=False),
                                               Y, metric)
    return out


def _one(a: Any, b: Any, metric: str) -> float:
    A, B = _as_matrix(a), _as_matrix(b)
    if A.shape[0] != 1 or B.shape[0] != 1:
        raise InputError(f"expected two single vectors, got shapes {A.shape} and {B.shape}; "
                         "use pairwise() for matrices")
    _check_finite(A, "a")
    _check_finite(B, "b")
    if metric == "euclidean" and A.shape == B.shape:
        # The direct difference is exact where the expanded form of pairwise() cancels.
        return float(row_norms(A.astype(np.float64) - B.astype(np.float64))[0])
    return float(pairwise(A, B, metric=metric)[0, 0])


def euclidean(a: Any, b: Any) -> float:
    """Euclidean distance ``||a - b||`` between two vectors (dense or 1-row sparse)."""
    return _one(a, b, "euclidean")


def cosine_similarity(a: Any, b: Any) -> float:
    """Cosine of the angle between ``a`` and ``b``, in [-1, 1]; 0 when either is a zero vector."""
    return _one(a, b, "cosine_similarity")


def cosine_distance(a: Any, b: Any) -> float:
    """``1 - cosine_similarity(a, b)``, in [0, 2]."""
    return _one(a, b, "cosine_distance")


def normalized_euclidean(a: Any, b: Any) -> float:
    """Euclidean distance between ``a/||a||`` and ``b/||b||``, in [0, 2]."""
    return _one(a, b, "normalized_euclidean")


def normalized_euclidean_similarity(a: Any, b: Any) -> float:
    """``1 - normalized_euclidean(a, b)``, in [-1, 1]; ranks exactly as cosine similarity."""
    return _one(a, b, "normalized_euclidean_similarity")
