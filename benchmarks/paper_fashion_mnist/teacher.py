"""The teacher ensemble's logits: trained once per configuration and kept on disk by
fingerprint, so a second student recipe costs only the students' time."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .config import Config
from .nets import StackedMLP, TrainSpec, hard_label_loss, logits_of, make_mlp, train

_TEACHER_FIELDS = (
    "dataset",
    "evaluated_on",
    "teacher_members",
    "teacher_hidden",
    "teacher_dropout",
    "teacher_input_dropout",
    "teacher_epochs",
    "max_shift",
    "batch_size",
    "lr",
    "seed",
)


def _fingerprint(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def teacher_cache_path(
    cache_dir: Path, config: Config, x: torch.Tensor, y: torch.Tensor, eval_x: torch.Tensor
) -> tuple[Path, dict]:
    """Where the logits of `config`'s teacher on this data live, and what they were made from.

    The name carries a hash of the teacher's settings and of the training and evaluation
    images, so a teacher is reused only for the very data and recipe it was trained on.
    """
    meta = {field: getattr(config, field) for field in _TEACHER_FIELDS}
    meta["data"] = _fingerprint(x, y, eval_x)
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir / f"teacher_seed{config.seed}_{key}.npz", meta


def teacher_logits(
    config: Config,
    x: torch.Tensor,
    y: torch.Tensor,
    eval_x: torch.Tensor,
    cache_dir: Path | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float, str | None]:
    """Each teacher member's logits on `x` and on `eval_x`, (k, n, 10) and (k, m, 10).

    Also returns the seconds the teacher took to train and, when the logits came from
    `cache_dir`, the file they came from (None when trained now). Members differ only by their
    seed (initial weights, batch order, jitter). Trained logits are saved to `cache_dir` (an
    ``.npz`` of plain arrays, written to a side file and renamed), so that experiments on the
    students need not train the teacher again: about 40 minutes a seed on 2 CPU cores.
    """
    device = x.device
    path = meta = None
    if cache_dir is not None:
        path, meta = teacher_cache_path(cache_dir, config, x, y, eval_x)
        if path.is_file():
            with np.load(path, allow_pickle=False) as saved:
                found = json.loads(str(saved["meta"]))
                if found != meta:  # a hash collision, or a file written by hand
                    raise SystemExit(f"error: {path} was saved for other settings: {found}")
                train_logits = torch.from_numpy(saved["train"]).to(device)
                eval_logits = torch.from_numpy(saved["eval"]).to(device)
                wall_s = float(saved["wall_s"])
            print(f"  teacher logits taken from {path}", file=sys.stderr, flush=True)
            return train_logits, eval_logits, wall_s, str(path)
    started = time.perf_counter()
    members = config.teacher_members
    nets = []
    for member in range(members):
        torch.manual_seed(config.seed + 100 + member)
        nets.append(
            make_mlp(
                x[0].numel(),
                config.teacher_hidden,
                dropout=config.teacher_dropout,
                input_dropout=config.teacher_input_dropout,
            )
        )
    teacher = train(
        StackedMLP(nets).to(device),
        x,
        y,
        TrainSpec(
            config.teacher_epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            max_shift=config.max_shift,
        ),
        loss_fns=[hard_label_loss] * members,
        seeds=[config.seed + 200 + member for member in range(members)],
    )
    train_logits, eval_logits = logits_of(teacher, x), logits_of(teacher, eval_x)
    wall_s = time.perf_counter() - started
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".tmp")
        with open(partial, "wb") as handle:
            np.savez(
                handle,
                train=train_logits.cpu().numpy(),
                eval=eval_logits.cpu().numpy(),
                wall_s=np.float64(wall_s),
                meta=np.str_(json.dumps(meta)),
            )
        partial.replace(path)
        print(f"  teacher logits saved to {path}", file=sys.stderr, flush=True)
    return train_logits, eval_logits, wall_s, None
