"""The results tables of README.md and docs/ are generated from benchmarks/results/*.json by
``benchmarks/report.py``; the prose around them is the pages' own and is not checked here."""

from __future__ import annotations

import json
import shutil

import pytest

from benchmarks import report
from benchmarks._harness import markdown_cell, markdown_table


def test_every_results_block_is_current():
    stale = [f"{b.where}: {b.name} ({b.renderer})"
             for page in report.pages() for b in report.update(page, write=False)]
    assert not stale, ("out of date (edited by hand, or a rerun's JSON committed without its "
                       f"tables): {stale}; run: python benchmarks/report.py")


def test_every_renderer_is_used_by_some_page():
    used = {b.renderer for page in report.pages() for b in report.blocks(page)[1]}
    assert used == set(report.RENDERERS)


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "stance_targets.json").write_text(json.dumps(  # not the committed figures
        {"rows": [{"seed": 7, "pooled": 1.5, "per_target": 2.5}],
         "mean": {"pooled": 1.5, "per_target": 2.5}}), encoding="utf-8")
    shutil.copy(report.RESULTS / "embedding_fidelity.json", folder)
    return folder


def test_a_stale_block_is_found_then_rewritten_and_prose_kept(tmp_path, results):
    page = tmp_path / "page.md"
    page.write_text("intro\n\n  <!-- results: stance_targets stance_targets.table -->\n"
                    "  | edited | by hand |\n  <!-- /results -->\n\nafter, kept\n", encoding="utf-8")
    assert [b.name for b in report.update(page, write=False, results=results)] == \
        ["stance_targets"]
    assert "edited" in page.read_text(encoding="utf-8")  # the check changes nothing
    report.update(page, write=True, results=results)
    text = page.read_text(encoding="utf-8")
    assert text.startswith("intro\n\n  <!-- results: stance_targets stance_targets.table -->\n"
                           "  | seed | one student for all targets |")  # indentation kept
    assert text.endswith("  <!-- /results -->\n\nafter, kept\n")
    assert "edited" not in text
    assert report.update(page, write=False, results=results) == []


def test_a_part_selects_one_paragraph(tmp_path, results):
    page = tmp_path / "page.md"
    page.write_text("<!-- results: embedding_fidelity embedding_fidelity.readme_tables#3 -->\n"
                    "<!-- /results -->\n", encoding="utf-8")
    report.update(page, write=True, results=results)
    body = page.read_text(encoding="utf-8").splitlines()[1:-1]
    assert body[0].startswith("| encoder | Pearson r |") and "" not in body


@pytest.mark.parametrize(("block", "match"), [
    ("<!-- results: stance_targets no_such.table -->\n<!-- /results -->", "unknown renderer"),
    ("<!-- results: absent stance_targets.table -->\n<!-- /results -->", "absent.json does not"),
    ("<!-- results: stance_targets stance_targets.table#9 -->\n<!-- /results -->",
     "renders 1 paragraph"),
    ("<!-- results: stance_targets stance_targets.table -->\n| x |\n", "without its closing"),
])
def test_bad_blocks_say_what_is_wrong(tmp_path, results, block, match):
    page = tmp_path / "page.md"
    page.write_text(block + "\n", encoding="utf-8")
    with pytest.raises(report.ReportError, match=match):
        report.update(page, write=True, results=results)
    assert page.read_text(encoding="utf-8") == block + "\n"


def test_check_exits_1_and_names_the_block(tmp_path, results, monkeypatch, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "<!-- results: stance_targets stance_targets.table -->\nold\n<!-- /results -->\n",
        encoding="utf-8")
    monkeypatch.setattr(report, "RESULTS", results)
    monkeypatch.setattr(report, "pages", lambda root=tmp_path: [tmp_path / "README.md"])
    assert report.main(["--check"]) == 1
    assert "stance_targets (stance_targets.table) is out of date" in capsys.readouterr().out
    assert report.main([]) == 0
    assert report.main(["--check"]) == 0
    assert "| 7 | 1.50 | 2.50 |" in (tmp_path / "README.md").read_text(encoding="utf-8")


def test_markdown_cells_and_table_shape():
    assert [markdown_cell(v) for v in (None, 63.0, 0.185, 201088.5, 1500, "x")] == \
        ["", "63.0", "0.185", "201,088", "1,500", "x"]
    assert markdown_table(["a", "b"], [[1, None]]) == "| a | b |\n|---|---|\n| 1 |  |"
    with pytest.raises(ValueError, match="3 cells under 2 columns"):
        markdown_table(["a", "b"], [[1, 2, 3]])
