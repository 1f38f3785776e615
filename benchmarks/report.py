"""Write every results table of the docs from the JSON the benchmarks wrote.

A page (README.md or any ``docs/**/*.md``) marks each generated table with two comments::

    <!-- results: retrieval bench_retrieval.readme_tables -->
    (generated: edit the JSON's benchmark, not these lines)
    <!-- /results -->

The first names a file of ``benchmarks/results/`` (without ``.json``) and the benchmark's own
renderer, the function its script prints the table with after a run (``RENDERER#2``: only the
second paragraph of what it renders, so that a page can put prose between a renderer's tables).
This script rewrites the lines between the two comments from that file; the prose around them
is the page's own.

    python benchmarks/report.py            # rewrite the blocks that are out of date
    python benchmarks/report.py --check    # change nothing; exit 1 naming each stale block

The test suite runs the check, so a table edited by hand, or a rerun whose JSON was committed
without its tables, fails there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import (  # noqa: E402
    bench_ann,
    bench_ann_libraries,
    bench_exact_dense,
    bench_exact_sparse,
    bench_metrics_lesson,
    bench_retrieval,
    bench_scale,
    distill_paper,
    distill_seeds,
    distill_sweep,
    distill_tweeteval,
    embedding_fidelity,
    stance_targets,
    teacher_candidates,
    tfidf_baseline,
)
from benchmarks._embedding_report import sweep_table as embedding_sweep_table  # noqa: E402
from benchmarks.reliability import sweep as reliability_sweep  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"

#: every renderer a page may name: the benchmarks' own table functions
RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "bench_ann.readme_table": bench_ann.readme_table,
    "bench_ann_libraries.readme_table": bench_ann_libraries.readme_table,
    "bench_exact_dense.readme_table": bench_exact_dense.readme_table,
    "bench_exact_sparse.readme_table": bench_exact_sparse.readme_table,
    "bench_metrics_lesson.readme_table": bench_metrics_lesson.readme_table,
    "bench_retrieval.readme_tables": bench_retrieval.readme_tables,
    "bench_scale.readme_table": bench_scale.readme_table,
    "distill_paper.format_table": distill_paper.format_table,
    "distill_paper.format_summary": distill_paper.format_summary,
    "distill_seeds.readme_table": distill_seeds.readme_table,
    "distill_sweep.readme_tables": distill_sweep.readme_tables,
    "distill_tweeteval.readme_table": distill_tweeteval.readme_table,
    "embedding_fidelity.readme_tables": embedding_fidelity.readme_tables,
    "embedding_student.sweep_table": embedding_sweep_table,
    "reliability.readme_table": reliability_sweep.readme_table,
    "stance_targets.table": stance_targets.table,
    "teacher_candidates.readme_table": teacher_candidates.readme_table,
    "tfidf_baseline.table": tfidf_baseline.table,
}

_OPEN = re.compile(r"^(?P<indent>[ \t]*)<!-- results: (?P<name>[\w.-]+) (?P<renderer>[\w.]+)"
                   r"(?:#(?P<part>[1-9][0-9]*))? -->$")
_CLOSE = "<!-- /results -->"


class ReportError(ValueError):
    """A page's results block that cannot be rendered (its line says why)."""


@dataclass
class Block:
    """One generated block: where it is and what it holds now."""

    page: Path
    line: int  # 1-based line of the opening comment
    name: str
    renderer: str
    part: int | None  # the part'th paragraph of the rendered text only (1-based), or all of it
    indent: str
    current: list[str]

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page}" \
               f":{self.line}"

    def rendered(self, results: Path | None = None) -> list[str]:
        render = RENDERERS.get(self.renderer)
        if render is None:
            raise ReportError(f"{self.where}: unknown renderer {self.renderer!r}; known: "
                              f"{', '.join(sorted(RENDERERS))}")
        source = (RESULTS if results is None else results) / f"{self.name}.json"
        try:
            payload = json.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReportError(f"{self.where}: {source} does not exist; run its benchmark, or "
                              "name a file of benchmarks/results/") from None
        text = render(payload)
        if self.part is not None:
            parts = text.split("\n\n")
            if self.part > len(parts):
                raise ReportError(f"{self.where}: {self.renderer} renders {len(parts)} "
                                  f"paragraph(s), there is no #{self.part}")
            text = parts[self.part - 1]
        return [f"{self.indent}{line}" if line else "" for line in text.splitlines()]


def pages(root: Path = ROOT) -> list[Path]:
    """The pages that may hold results blocks."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def blocks(page: Path) -> tuple[list[str], list[Block]]:
    """The page's lines and its results blocks, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if match is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == _CLOSE), None)
        if end is None or any(_OPEN.match(line) for line in lines[i + 1:end]):
            raise ReportError(f"{page}:{i + 1}: a results block without its closing {_CLOSE}")
        part = int(match["part"]) if match["part"] else None
        found.append(Block(page, i + 1, match["name"], match["renderer"], part, match["indent"],
                           lines[i + 1:end]))
        i = end + 1
    return lines, found


def _write(page: Path, text: str) -> None:
    """Replace ``page`` in one step: a reader sees the old page or the new one."""
    fd, tmp = tempfile.mkstemp(dir=page.parent, prefix=f".{page.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, page)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update(page: Path, *, write: bool, results: Path | None = None) -> list[Block]:
    """The page's stale blocks; with ``write``, the page rewritten with them current."""
    lines, found = blocks(page)
    stale = [b for b in found if b.current != b.rendered(results)]
    if write and stale:
        out: list[str] = []
        at = 0
        for block in found:
            out += lines[at:block.line]  # up to and with the opening comment
            out += block.rendered(results)
            at = block.line + len(block.current)
        out += lines[at:]
        _write(page, "\n".join(out) + "\n")
    return stale


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true",
                   help="change nothing; exit 1 if a block is out of date")
    args = p.parse_args(argv)
    try:
        stale = [(b, page) for page in pages() for b in update(page, write=not args.check)]
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for block, _ in stale:
        verb = "is out of date" if args.check else "rewritten"
        print(f"{block.where}: {block.name} ({block.renderer}) {verb}")
    if args.check and stale:
        print("run: python benchmarks/report.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
