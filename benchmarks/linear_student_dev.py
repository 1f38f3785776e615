"""Is the SGD student under-fitted? A convex linear student on the same hashed features.

The question behind the tweet-classification issue: the distilled student loses to TF-IDF +
logistic regression, although its teacher contains such linear members. This benchmark fits,
on the student's own hashed word and character n-grams (``HashingFeaturizer``, 2^17 buckets)
weighted by TF-IDF and L2-normalised:

- ``hard LR``: softmax regression on the one-hot labels, solved to convergence (L-BFGS);
- ``soft LR``: the same on Hinton's soft targets,
  ``(1 - alpha) * onehot + alpha * softmax(teacher_logits / T)``;
- ``teacher``: the default ensemble, for reference.

All three are trained on four fifths of the task's TRAINING split and scored (official TweetEval
score) on the remaining fifth ("dev fold"), so neither the validation nor the test split is
looked at. ``--quick`` fits one C and one soft setting.

Usage (from the repository root)::

    python benchmarks/linear_student_dev.py --tasks irony        # about 2 minutes
    python benchmarks/linear_student_dev.py --tasks emotion,irony,stance

Writes ``benchmarks/results/linear_student_dev.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import markdown_table, parser, write_json  # noqa: E402
from benchmarks._tweeteval import load_task, official_score  # noqa: E402

GRID_C = (2.0, 8.0, 32.0)
GRID_SOFT = ((1.0, 0.5), (2.0, 0.5), (4.0, 0.5), (1.0, 1.0))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def fit_softmax(X: Any, Q: np.ndarray, *, l2: float,
                max_iter: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression of sparse ``X`` on target distributions ``Q``: mean cross-entropy
    plus ``l2 / 2 * |W|^2``, minimised by L-BFGS. Returns ``(W, b)``."""
    from scipy.optimize import minimize

    n, d = X.shape
    k = Q.shape[1]
    Xt = X.T.tocsr()

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = theta[:d * k].reshape(d, k), theta[d * k:]
        Z = X @ W + b
        Z -= Z.max(axis=1, keepdims=True)
        log_p = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        G = (np.exp(log_p) - Q) / n
        loss = -(Q * log_p).sum() / n + 0.5 * l2 * float((W * W).sum())
        return loss, np.concatenate([(Xt @ G + l2 * W).ravel(), G.sum(axis=0)])

    found = minimize(loss_and_grad, np.zeros(d * k + k), jac=True, method="L-BFGS-B",
                     options={"maxiter": max_iter, "gtol": 1e-6})
    return found.x[:d * k].reshape(d, k), found.x[d * k:]


def _tfidf(featurizer: Any, train: list[str], dev: list[str]) -> tuple[Any, Any]:
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    def counts(texts: list[str]) -> Any:
        ids, _ = (f := featurizer.transform(texts)).bags()
        rows = np.repeat(np.arange(len(texts)), f.counts)
        X = sp.csr_matrix((np.ones(len(ids), np.float64), (rows, ids)),
                          shape=(len(texts), featurizer.buckets))
        X.sum_duplicates()
        return X

    A, B = counts(train), counts(dev)
    df = np.asarray((A > 0).sum(axis=0)).ravel()
    idf = sp.diags(np.log((1 + A.shape[0]) / (1 + df)) + 1)
    return normalize(A @ idf), normalize(B @ idf)


def run_task(name: str, quick: bool = False) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedKFold

    from simtools.distill.teacher import make_teacher
    from simtools.student.featurizer import HashingFeaturizer

    task = load_task(name, max_train=50000, seed=0)
    fit_at, dev_at = next(StratifiedKFold(5, shuffle=True, random_state=0)
                          .split(task.train_texts, task.train_y))
    train = [task.train_texts[i] for i in fit_at]
    dev = [task.train_texts[i] for i in dev_at]
    y_fit, y_dev = task.train_y[fit_at], task.train_y[dev_at]

    def score(pred: np.ndarray) -> float:
        return round(100 * official_score(name, task.labels, y_dev, pred), 2)

    teacher = make_teacher("default", seed=0).fit(train, [task.labels[i] for i in y_fit])
    columns = [list(teacher.labels).index(label) for label in task.labels]
    logits_fit = np.asarray(teacher.predict_logits(train))[:, columns]
    result: dict[str, Any] = {"task": name, "n_fit": len(train), "n_dev": len(dev),
                              "teacher": score(np.asarray(teacher.predict_logits(dev))[:, columns]
                                               .argmax(axis=1)), "rows": []}
    A, B = _tfidf(HashingFeaturizer(buckets=1 << 17), train, dev)
    onehot = np.eye(len(task.labels))[y_fit]
    for C in GRID_C[1:2] if quick else GRID_C:
        for T, alpha in ((1.0, 0.0), *GRID_SOFT[:1 if quick else None]):
            started = time.perf_counter()
            Q = (1 - alpha) * onehot + alpha * _softmax(logits_fit / T)
            W, b = fit_softmax(A, Q, l2=1.0 / (C * len(train)))
            result["rows"].append({"C": C, "T": T, "alpha": alpha,
                                   "dev": score((B @ W + b).argmax(axis=1)),
                                   "seconds": round(time.perf_counter() - started, 1)})
            print(name, result["rows"][-1], flush=True)
    hard = [r for r in result["rows"] if r["alpha"] == 0]
    soft = [r for r in result["rows"] if r["alpha"] > 0]
    result["best_hard"] = max(hard, key=lambda r: r["dev"])
    result["best_soft"] = max(soft, key=lambda r: r["dev"])
    return result


def table(payload: dict[str, Any]) -> str:
    """The best hard and soft settings per task, beside the teacher (a results renderer)."""
    rows = [[r["task"], f"{r['best_hard']['dev']:.2f} (C {r['best_hard']['C']:g})",
             f"{r['best_soft']['dev']:.2f} (C {r['best_soft']['C']:g}, T {r['best_soft']['T']:g},"
             f" alpha {r['best_soft']['alpha']:g})", f"{r['teacher']:.2f}"] for r in payload["results"]]
    return markdown_table(["task (dev fold)", "hard LR", "soft LR", "teacher"], rows)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--tasks", default="emotion,irony,stance", help="comma-separated TweetEval tasks")
    args = p.parse_args()
    results = [run_task(name, args.quick) for name in args.tasks.split(",")]
    print(table({"results": results}))
    if not args.no_json and not args.quick:
        write_json("linear_student_dev", {"split": "dev fold of train (1/5, seed 0)",
                                          "features": "HashingFeaturizer 2^17, TF-IDF, L2",
                                          "results": results})


if __name__ == "__main__":
    main()
