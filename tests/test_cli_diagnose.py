"""``simtools diagnose gradients`` through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

from simtools_cli.diagnose import diagnose_group  # noqa: E402


def test_gradients_prints_a_table_and_writes_the_plot(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "grads.png"
    result = CliRunner().invoke(diagnose_group, ["gradients", "--depth", "4", "--width", "8",
                                                 "--steps", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["layer", "sigmoid@0", "sigmoid@2", "relu@0", "relu@2"]
    assert [line.split()[0] for line in lines[1:5]] == ["1", "2", "3", "4"]
    assert "first/last layer norm" in result.output
    assert out.is_file()


def test_gradients_json() -> None:
    result = CliRunner().invoke(diagnose_group, ["gradients", "--depth", "3", "--width", "4",
                                                 "--steps", "0", "--activation", "tanh", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["activations"] == ["tanh"]
    assert len(data["norms"]["tanh"]["0"]) == 3
    assert data["plot"] is None


@pytest.mark.parametrize(("args", "message"), [
    (["--depth", "1"], "--depth"),
    (["--activation", "swish"], "swish"),
    (["--out", "grads.jpg"], "not a .png path"),
])
def test_gradients_rejects_bad_options(args: list[str], message: str) -> None:
    result = CliRunner().invoke(diagnose_group, ["gradients", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(diagnose_group, ["gradients", "--help"])
    assert result.exit_code == 0
    assert "simtools diagnose gradients --depth 10" in result.output
