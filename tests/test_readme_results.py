"""The README quotes every benchmark table exactly as the benchmark's script renders it from
the JSON that the run wrote (``benchmarks/results/*.json``): a figure edited by hand, or a
rerun that was not copied into the README, fails here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks import (
    bench_retrieval,
    distill_paper,
    distill_seeds,
    distill_sweep,
    distill_tweeteval,
    embedding_fidelity,
    stance_targets,
    tfidf_baseline,
)
from benchmarks._harness import markdown_cell, markdown_table
from benchmarks.reliability import sweep as reliability_sweep

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: (results file, the script's renderer) for every table block the README quotes
QUOTED: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("distill_paper", distill_paper.format_table),
    ("distill_paper", distill_paper.format_summary),
    ("distill_paper_e30", distill_paper.format_table),
    ("distill_paper_e30", distill_paper.format_summary),
    ("distill_tweeteval", distill_tweeteval.readme_table),
    ("distill_seeds", distill_seeds.readme_table),
    ("distill_seeds_cv5", distill_seeds.readme_table),
    ("distill_sweep", distill_sweep.readme_tables),
    ("embedding_fidelity", embedding_fidelity.readme_tables),
    ("reliability", reliability_sweep.readme_table),
    ("retrieval", bench_retrieval.readme_tables),
    ("stance_targets", stance_targets.table),
    ("tfidf_baseline", tfidf_baseline.table),
]


def _readme() -> str:
    # The README and docs/ (its results page quotes the tables). Markdown list items indent
    # quoted tables; compare the text without that indentation.
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(line.strip() for page in pages
                     for line in page.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize(("name", "render"), QUOTED,
                         ids=[f"{n}-{r.__name__}" for n, r in QUOTED])
def test_readme_quotes_the_table_its_command_prints(name, render):
    """Each paragraph of the rendered block (a table, or a table's caption) is in the README,
    in the rendered order; the README may put its own prose between them."""
    payload = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))
    block = "\n".join(line.strip() for line in render(payload).splitlines())
    readme, at = _readme(), 0
    for chunk in block.split("\n\n"):
        found = readme.find(chunk, at)
        missing = [line for line in chunk.splitlines() if line not in readme]
        assert found >= 0, (
            f"README.md does not quote benchmarks/results/{name}.json as {render.__name__} "
            f"renders it (lines not found: {missing[:3]}); paste this block into the README, "
            f"after what precedes it:\n{chunk}")
        at = found + len(chunk)


def test_markdown_cells_and_table_shape():
    assert [markdown_cell(v) for v in (None, 63.0, 0.185, 201088.5, 1500, "x")] == \
        ["", "63.0", "0.185", "201,088", "1,500", "x"]
    assert markdown_table(["a", "b"], [[1, None]]) == "| a | b |\n|---|---|\n| 1 |  |"
    with pytest.raises(ValueError, match="3 cells under 2 columns"):
        markdown_table(["a", "b"], [[1, 2, 3]])
