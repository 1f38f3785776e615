"""`simtools classify` on the bundled default model (and --model): output, options, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner
from simtools_cli.main import main

from simtools.classify.student import default_model_path

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
    assert len(result.stdout.splitlines()) == 2  # the blank line is skipped


@pytest.mark.parametrize("args, message", [
    (("   ",), "is empty or has no words"),
    (("안녕하세요",), "have no letter or digit in the scripts the model was trained on"),
    (("🎉🎉",), "have no letter or digit in the scripts the model was trained on"),
    (("--top-k", "0", "text"), "must be at least 1"),
])
def test_bad_input_is_a_one_line_error(args, message):
    result = run(*args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert message in result.output


def test_unknown_script_texts_are_marked_and_the_others_classified():
    result = run("-", stdin="The striker scored twice\n안녕하세요\nMPs vote on the budget\n")
    assert result.exit_code == 1
    labels = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert labels == ["sports", "UNKNOWN", "politics"]
    assert "1 text(s)" in result.stderr and "text 2" in result.stderr
    rows = [json.loads(line) for line in run("--json", "안녕하세요").stdout.splitlines()]
    assert rows[0]["label"] is None and rows[0]["probabilities"] == {} and "error" in rows[0]


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
