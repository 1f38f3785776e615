"""`simtools classify` on the bundled default model (and --model): output, options, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from simtools_cli.main import main

from simtools.student import default_model_path

BBC = {"business", "entertainment", "politics", "sports", "tech"}


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, ["classify", *args], input=stdin)


def test_bundled_model_labels_each_text():
    result = run("Shares fell after the bank cut its profit forecast",
                 "The striker scored twice in the cup final")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    label, probability, text = lines[0].split("\t")
    assert label in BBC and 0 < float(probability) <= 1
    assert text == "Shares fell after the bank cut its profit forecast"
    assert [line.split("\t")[0] for line in lines] == ["business", "sports"]


def test_json_schema_and_top_k():
    result = run("--json", "--top-k", "2", "MPs vote on the new budget")
    row = json.loads(result.stdout)
    assert list(row) == ["text", "label", "probabilities"]
    assert len(row["probabilities"]) == 2 and row["label"] == max(row["probabilities"],
                                                                  key=row["probabilities"].get)
    full = json.loads(run("--json", "MPs vote on the new budget").stdout)
    assert set(full["probabilities"]) == BBC
    assert sum(full["probabilities"].values()) == pytest.approx(1, abs=1e-4)


def test_stdin_one_text_per_line():
    result = run("-", stdin="a new phone with a faster chip\n\nthe film won an award\n")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[1] == "EMPTY\t-\t"  # the blank line keeps its place


@pytest.mark.parametrize("text, label", [("   ", "EMPTY"), ("안녕하세요", "UNKNOWN"),
                                         ("🎉🎉", "UNKNOWN")])
def test_a_text_that_cannot_be_classified_is_a_record(text, label):
    result = run(text)
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert result.stdout == f"{label}\t-\t{text}\n"
    assert result.stderr.startswith(f"Warning: 1 of 1 line(s) could not be classified: 1 {label}")


def test_bad_option_is_a_one_line_error():
    result = run("--top-k", "0", "text")
    assert result.exit_code == 2 and "must be at least 1" in result.output


def test_unknown_script_texts_are_marked_and_the_others_classified():
    result = run("-", stdin="The striker scored twice\n안녕하세요\nMPs vote on the budget\n")
    assert result.exit_code == 0  # every line was written; a warning counts the UNKNOWN ones
    labels = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert labels == ["sports", "UNKNOWN", "politics"]
    assert "1 UNKNOWN (no letter or digit" in result.stderr and "line 2" in result.stderr
    rows = [json.loads(line) for line in run("--json", "안녕하세요").stdout.splitlines()]
    assert rows[0]["label"] is None and rows[0]["probabilities"] == {}
    assert rows[0]["error"] == "UNKNOWN: no letter or digit in the scripts the model was trained on"


def test_allow_unknown_classifies_other_scripts():
    result = run("--allow-unknown", "안녕하세요")
    assert result.exit_code == 0 and result.stdout.split("\t")[0] in BBC


def test_model_folder_errors(tmp_path):
    assert "does not exist" in run("--model", str(tmp_path / "none"), "text").output
    copy = tmp_path / "model"
    shutil.copytree(default_model_path(), copy)
    config = json.loads((copy / "config.json").read_text())
    config["format_version"] = 99
    (copy / "config.json").write_text(json.dumps(config))
    result = run("--model", str(copy), "text")
    assert result.exit_code == 1 and "format version 99" in result.output


def test_cold_start_imports_no_heavy_library():
    code = ("import sys\nfrom simtools_cli.main import main\n"
            "try:\n    main(['classify', 'a text about football'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'sklearn', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_evaluate_on_an_empty_hold_out_is_an_error(tmp_path):
    data = tmp_path / "tiny.csv"
    data.write_text("text,label\nshares fell,business\nthe striker scored,sports\n")
    result = CliRunner().invoke(main, ["evaluate", "--data", str(data)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "accuracy" not in result.stdout
    assert "the val split of" in result.stderr and "holds no texts" in result.stderr
    # --split all scores every row of the file: here both
    result = CliRunner().invoke(main, ["evaluate", "--data", str(data), "--split", "all", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["n"] == 2
