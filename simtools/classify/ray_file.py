"""Classify a large file of texts on Ray (``simtools classify --engine ray INPUT --out OUTPUT``).

The file is cut into byte ranges that end at a newline, one piece of work each. A pool of
``workers`` Ray actors, each holding the student once, reads its ranges (so INPUT must be
readable at the same path by every node: a local file on one machine, a shared file system on
a cluster), classifies every line and formats it (:mod:`simtools.classify.lines`). The
blocks come back in input order and are written here to a temporary file beside OUTPUT, which
replaces OUTPUT only once it is complete. Every input line gets exactly one output line, in
order, as ``simtools classify -`` would write it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .lines import EMPTY_CODE, UNKNOWN_CODE, format_lines, split_lines, statuses

__all__ = ["CHUNK_BYTES", "FileReport", "classify_file_ray", "line_ranges"]

#: Bytes of input per piece of work (about 20k tweets).
CHUNK_BYTES = 2 << 20


@dataclass
class FileReport:
    """What a run wrote: its lines, and the 0-based line numbers written UNKNOWN or EMPTY."""

    lines: int = 0
    unknown: list[int] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)
    first_unknown_text: str = ""


def line_ranges(path: str | os.PathLike[str], chunk_bytes: int = CHUNK_BYTES
                ) -> list[tuple[int, int]]:
    """``[start, end)`` byte ranges covering ``path``, each ending just after a newline (the
    last at the end of the file), of about ``chunk_bytes`` each."""
    size = os.path.getsize(path)
    ranges, start = [], 0
    with open(path, "rb") as f:
        while start < size:
            f.seek(min(start + chunk_bytes, size) - 1)
            rest = f.readline()  # up to and including the next newline
            end = f.tell() if rest else size
            ranges.append((start, end))
            start = end
    return ranges


def _load(model_files: dict[str, bytes] | None, target: str | None) -> Any:
    from ..student.groups import GroupedStudents, load_model

    if model_files is None:
        model: Any = load_model(None)
    else:
        from ..engines.transport import write_files

        with tempfile.TemporaryDirectory(prefix="simtools-model-") as tmp:
            write_files(model_files, tmp)
            model = load_model(tmp)
    if isinstance(model, GroupedStudents):
        if target is None:
            raise InputError(f"this model holds one student per target "
                             f"({', '.join(model.groups)}); choose one (target=NAME)")
        return model.student(target)
    if target is not None:
        raise InputError("target is for a model of one student per target; this model is "
                         "one student for all texts")
    return model


class _ClassifyActor:
    """Byte ranges of the input in, formatted lines out; the student loaded once."""

    def __init__(self, model_files: dict[str, bytes] | None, settings: dict[str, Any]) -> None:
        self.model = _load(model_files, settings["target"])
        self.settings = settings

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        blocks, counts, sizes, unknown, empty, examples = [], [], [], [], [], []
        for start, end in zip(batch["start"], batch["end"]):
            with open(s["path"], "rb") as f:
                f.seek(int(start))
                data = f.read(int(end) - int(start))
            try:
                texts = split_lines(data.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise InputError(f"{s['path']} is not UTF-8 (bad byte at offset "
                                 f"{int(start) + e.start}); convert it, e.g. with iconv") from None
            proba, known = self.model.predict_proba_known(texts,
                                                          check_scripts=not s["allow_unknown"])
            status = statuses(texts, known)
            blocks.append(format_lines(texts, proba, list(self.model.labels), s["top_k"],
                                       s["as_json"], status, s["unknown_reason"]))
            counts.append(len(texts))
            sizes.append(int(end) - int(start))
            bad = np.flatnonzero(status == UNKNOWN_CODE)
            unknown.append(json.dumps(bad.tolist()))
            empty.append(json.dumps(np.flatnonzero(status == EMPTY_CODE).tolist()))
            examples.append(texts[bad[0]][:40] if bad.size else "")
        return {"block": np.array(blocks, dtype=object), "lines": np.array(counts),
                "bytes": np.array(sizes),
                "unknown": np.array(unknown, dtype=object),
                "empty": np.array(empty, dtype=object),
                "example": np.array(examples, dtype=object)}


def classify_file_ray(path: str | os.PathLike[str], out: str | os.PathLike[str], *,
                      model_dir: str | os.PathLike[str] | None = None,
                      target: str | None = None, allow_unknown: bool = False, top_k: int = 1,
                      as_json: bool = False, unknown_reason: str = "", workers: int = 2,
                      address: str | None = None, chunk_bytes: int = CHUNK_BYTES,
                      on_bytes: Callable[[int], None] | None = None) -> FileReport:
    """Classify every line of ``path`` into the file ``out`` on Ray (see the module docstring):
    with the student at ``model_dir`` (the bundled model without one). ``out`` appears only
    when it is complete. ``on_bytes(n)`` is called as the lines of ``n`` input bytes are
    written (for progress)."""
    from ..engines.ray_session import actor_pool, connect
    from ..engines.transport import folder_files

    path, out = Path(path), Path(out)
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist; check the path")
    files = None if model_dir is None else folder_files(model_dir)
    _load(files, target)  # a model that cannot be used fails here, once, before Ray starts
    ray = connect(address, num_cpus=workers)
    ranges = line_ranges(path, chunk_bytes)
    report = FileReport()
    settings = {"path": str(path.resolve()), "target": target, "allow_unknown": allow_unknown,
                "top_k": top_k, "as_json": as_json, "unknown_reason": unknown_reason}
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as sink:
            if ranges:
                items = [{"start": start, "end": end} for start, end in ranges]
                dataset = ray.data.from_items(items, override_num_blocks=len(items))
                done = dataset.map_batches(_ClassifyActor, fn_constructor_args=(files, settings),
                                           batch_size=1, batch_format="numpy",
                                           compute=actor_pool(min(workers, len(items))))
                for batch in done.iter_batches(batch_size=None, batch_format="numpy"):
                    for i in range(len(batch["block"])):
                        _take(batch, i, sink, report)
                        if on_bytes is not None:
                            on_bytes(int(batch["bytes"][i]))
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return report


def _take(batch: dict[str, Any], i: int, sink: Any, report: FileReport) -> None:
    sink.write(str(batch["block"][i]))
    first, lines = report.lines, int(batch["lines"][i])
    unknown = json.loads(str(batch["unknown"][i]))
    if unknown and not report.unknown:
        report.first_unknown_text = str(batch["example"][i])
    report.unknown.extend(first + j for j in unknown)
    report.empty.extend(first + j for j in json.loads(str(batch["empty"][i])))
    report.lines += lines
