"""How fast the student classifies: cold start, stdin to stdout, in process, vs a baseline.

Measures, on the same machine in the same run:

- cold start: ``simtools classify "<one tweet>"`` as a fresh process (best of N), and which
  heavy libraries that process imported (it should import none of torch, sklearn, scipy);
- stdin to stdout: ``simtools classify - --model M < 200k tweets > out`` as a fresh process,
  wall time including start-up, reading, classifying and writing every line;
- in process: ``StudentClassifier.predict_proba`` on the same tweets;
- the fastText-style competitor, in process: scikit-learn ``HashingVectorizer`` (word 1-2
  grams; and char 3-5 grams) + ``SGDClassifier`` / ``LogisticRegression``, trained on the same
  BBC News training split, ``predict_proba`` on the same tweets.

Usage: python benchmarks/bench_classify_speed.py [--model DIR] [--n 200000] [--repeat 3]
Writes benchmarks/results/classify_speed.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATASETS = Path(os.environ.get("SIMTOOLS_SHARED", HERE.parents[1] / "shared")) / "datasets"
TWEET = "Can't believe the striker scored twice in the final minutes, what a match! 🔥"
HEAVY = ("torch", "sklearn", "scipy", "onnxruntime")


def load_tweets(n: int) -> list[str]:
    """``n`` real tweets: the TweetEval training files, repeated to reach ``n``."""
    tweets: list[str] = []
    for task in ("emoji", "offensive", "hate", "emotion", "irony"):
        path = DATASETS / "tweeteval" / task / "train_text.txt"
        if path.exists():
            tweets += [t for t in path.read_text(encoding="utf-8").splitlines() if t.strip()]
    if not tweets:
        raise SystemExit(f"no TweetEval files under {DATASETS}; set SIMTOOLS_SHARED")
    return (tweets * (n // len(tweets) + 1))[:n]


def cold_start(model: str, repeat: int) -> dict[str, object]:
    code = ("import sys\nfrom simtools_cli.main import main\n"
            f"sys.argv = ['simtools', 'classify', {TWEET!r}, '--model', {model!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n")
    times, cpu, heavy, label = [], [], "", ""
    for _ in range(repeat):
        before = _child_cpu()
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - started)
        cpu.append(_child_cpu() - before)
        heavy = done.stderr.strip().splitlines()[-1]
        label = done.stdout.split("\t")[0]
    return {"seconds_best": min(times), "seconds_all": times, "cpu_seconds_best": min(cpu),
            "label": label,
            "heavy_imports": heavy.removeprefix("HEAVY ")}


def stdin_to_stdout(model: str, tweets: list[str], repeat: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "tweets.txt"
        source.write_text("\n".join(tweets) + "\n", encoding="utf-8")
        times, cpu, lines = [], [], 0
        for _ in range(repeat):
            with open(source, "rb") as stdin, open(Path(tmp) / "out.tsv", "wb") as stdout:
                before = _child_cpu()
                started = time.perf_counter()
                # Exit status 1 only flags texts written as UNKNOWN (emoji-only tweets); every
                # line is still written, which the line count below checks.
                done = subprocess.run([sys.executable, "-m", "simtools", "classify", "-",
                                       "--model", model], stdin=stdin, stdout=stdout,
                                      stderr=subprocess.PIPE)
                times.append(time.perf_counter() - started)
                cpu.append(_child_cpu() - before)
                if done.returncode not in (0, 1) or (done.returncode and b"UNKNOWN" not in done.stderr):
                    raise RuntimeError(f"simtools classify failed: {done.stderr.decode()[-300:]}")
            out = (Path(tmp) / "out.tsv").read_bytes()
            lines = out.count(b"\n")
            if lines != len(tweets):
                raise RuntimeError(f"{len(tweets)} tweets in but {lines} lines out")
    best = min(times)
    return {"seconds_best": best, "seconds_all": times, "lines_out": lines,
            "tweets_per_second": len(tweets) / best, "cpu_seconds_best": min(cpu),
            "tweets_per_cpu_second": len(tweets) / min(cpu)}


def _child_cpu() -> float:
    """CPU seconds (user + system) used so far by finished child processes: unlike wall time,
    it does not grow when other programs compete for the cores."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _accuracy(predicted: Iterable[object], truth: list[str]) -> float:
    return sum(str(p) == t for p, t in zip(predicted, truth, strict=True)) / len(truth)


def timed(fn, repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="student model folder (default: bundled)")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "classify_speed.json"))
    args = parser.parse_args()

    from simtools.student import StudentClassifier, default_model_path

    model_path = str(args.model or default_model_path())
    tweets = load_tweets(args.n)
    results: dict[str, Any] = {"n_tweets": len(tweets), "model": model_path,
                                  "cpu_count": os.cpu_count(),
                                  "load_average": os.getloadavg()}
    results["cold_start"] = cold_start(model_path, args.repeat)
    results["stdin_to_stdout"] = stdin_to_stdout(model_path, tweets, args.repeat)

    model = StudentClassifier.load(model_path)
    rows = [("student (numpy), in process", len(tweets) / timed(lambda: model.predict_proba(tweets),
                                                                   args.repeat))]
    # the competitor, trained on the same data and split as the student
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    from simtools.data import load_labelled

    data = load_labelled(model.config.get("data", {}).get("source", "bbc-news"))
    baselines = {
        "hashing word 1-2 + SGD": (HashingVectorizer(ngram_range=(1, 2), n_features=1 << 18,
                                                     alternate_sign=False),
                                   SGDClassifier(loss="log_loss", random_state=0)),
        "hashing word 1-2 + LogisticRegression": (
            HashingVectorizer(ngram_range=(1, 2), n_features=1 << 18, alternate_sign=False),
            LogisticRegression(max_iter=1000)),
        "hashing char_wb 3-5 + SGD": (HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5),
                                                        n_features=1 << 18, alternate_sign=False),
                                      SGDClassifier(loss="log_loss", random_state=0)),
    }
    accuracy = {}
    for name, (vectorizer, clf) in baselines.items():
        clf.fit(vectorizer.transform(data.train.texts), data.train.labels)
        accuracy[name] = _accuracy(clf.predict(vectorizer.transform(data.val.texts)),
                                   data.val.labels)
        rows.append((name, len(tweets) / timed(
            lambda v=vectorizer, c=clf: c.predict_proba(v.transform(tweets)), args.repeat)))
    accuracy["student (numpy), in process"] = _accuracy(model.predict(data.val.texts),
                                                        data.val.labels)
    results["in_process"] = [{"name": name, "tweets_per_second": rate,
                              "val_accuracy": accuracy.get(name)} for name, rate in rows]
    student_rate = rows[0][1]

    cold, pipe = results["cold_start"], results["stdin_to_stdout"]
    print(f"{len(tweets):,} tweets, {os.cpu_count()} cores, load average "
          f"{results['load_average'][0]:.1f}")
    print(f"cold start, one tweet: {cold['seconds_best']:.3f} s wall, {cold['cpu_seconds_best']:.3f} s "
          f"CPU (heavy imports: {cold['heavy_imports']})")
    print(f"stdin to stdout: {pipe['seconds_best']:.2f} s wall = {pipe['tweets_per_second']:,.0f} "
          f"tweets/s; {pipe['cpu_seconds_best']:.2f} s CPU = {pipe['tweets_per_cpu_second']:,.0f} "
          "tweets per CPU-second")
    print(f"{'in process':<40} {'tweets/s':>12} {'x student':>10} {'BBC val acc':>12}")
    for name, rate in rows:
        acc = accuracy.get(name)
        print(f"{name:<40} {rate:>12,.0f} {rate / student_rate:>10.3f} "
              f"{'-' if acc is None else format(acc, '.4f'):>12}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
