"""Every code block of the README (and of docs/*.md) runs as written, offline, on small files.

The convention (the README's "Development" section says the same to its authors):

* ``bash``, ``console`` and ``python`` blocks run in file order, in one scratch folder that
  holds a copy of ``datasets/examples/`` (the README's ``notes/``, ``news.csv``, ...), a link
  to ``../shared`` when it is there (and to its Wikipedia dump fragment under the name the
  README uses), an empty ``SIMTOOLS_CACHE_DIR``, ``HOME`` inside the scratch folder, and
  ``SIMTOOLS_WIKIPEDIA_API_URL`` pointing at the stand-in API of ``tests/fakewiki.py``.
  Later blocks may use what earlier ones made, as a reader's shell would.
* Untagged blocks never run: synopses, diagrams, formulas and outputs.
* HTML comments on the lines just above a block steer it:
  ``<!-- readme-test: skip: REASON -->`` (not run; reported as a skip with REASON),
  ``<!-- readme-test: needs: PATH -->`` (skipped unless PATH exists in the scratch folder),
  ``<!-- readme-test: output -->`` (an untagged block that is the expected output of the
  ``bash`` or ``python`` block just before it), ``<!-- readme-test: unchecked: REASON -->``
  (a ``console`` block that runs without its output being compared).
* In a ``console`` block, ``$ `` lines are commands (a trailing backslash continues one) and
  the lines up to the next ``$ `` are that command's output.
* Outputs are compared line by line, trailing spaces and blank lines at the end ignored:
  numbers match within 0.1% (or 0.001), and a line ``...`` matches any number of lines. An
  ``output`` block is the stdout of its block; a ``console`` block shows what a terminal shows,
  stdout and stderr together (progress labels included).

Every block must exit with status 0.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import DATASETS, ROOT, SHARED
from tests.fakewiki import FakeWiki

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"bash", "console", "python"}
TIMEOUT = 180  # seconds per block; the slowest one takes about 6
MARKER = re.compile(r"<!-- readme-test: (\w+)(?::\s*(.*?))?\s*-->")
FENCE = re.compile(r"^```(\S*)\s*$")
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
DUMP = "enwiki-sample-pages-articles.xml.bz2"


@dataclass
class Block:
    """One fenced code block: where it is, its language, its text and the markers above it."""

    path: Path
    line: int  # of the opening fence, from 1
    lang: str
    text: str
    markers: dict[str, str] = field(default_factory=dict)
    output: str | None = None  # the expected output, from a following "output" block

    @property
    def id(self) -> str:
        return f"{self.path.name}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, each with the ``readme-test`` markers above it;
    an ``output`` block is attached to the block before it instead of being listed."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"{path}:{i + 1}: a code block that never ends")
        markers: dict[str, str] = {}
        above = i - 1
        while above >= 0 and MARKER.fullmatch(lines[above].strip()):
            found = MARKER.fullmatch(lines[above].strip())
            assert found is not None
            markers[found.group(1)] = found.group(2) or ""
            above -= 1
        unknown = set(markers) - {"skip", "needs", "output", "unchecked"}
        if unknown:
            raise ValueError(f"{path}:{i + 1}: unknown readme-test marker(s) {sorted(unknown)}")
        block = Block(path, i + 1, opening.group(1), "\n".join(lines[i + 1:end]), markers)
        if "output" in markers:
            previous = blocks[-1] if blocks else None
            if block.lang or previous is None or previous.lang not in ("bash", "python"):
                raise ValueError(f"{path}:{i + 1}: an output block must be untagged and follow "
                                 "a bash or python block")
            previous.output = block.text
        else:
            blocks.append(block)
        i = end + 1
    return blocks


BLOCKS = [block for path in DOCUMENTS for block in parse_blocks(path)]


# -- comparing outputs -------------------------------------------------------------------------
def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _same_line(expected: str, actual: str) -> bool:
    if expected == actual:
        return True
    if NUMBER.split(expected) != NUMBER.split(actual):
        return False
    return all(math.isclose(float(e), float(a), rel_tol=1e-3, abs_tol=1e-3)
               for e, a in zip(NUMBER.findall(expected), NUMBER.findall(actual), strict=True))


def _matches(expected: list[str], actual: list[str]) -> bool:
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(_matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and _same_line(expected[0], actual[0]) and _matches(expected[1:], actual[1:])


def check_output(expected: str, actual: str, where: str) -> None:
    want, got = _lines(expected), _lines(actual)
    if not _matches(want, got):
        diff = "\n".join(difflib.unified_diff(want, got, "README", "actual", lineterm=""))
        pytest.fail(f"{where}: the output differs from the README's\n{diff}", pytrace=False)


def test_output_comparison_rules() -> None:
    assert _matches(["a 0.5007 b", "...", "end"], ["a 0.5009 b", "x", "y", "end"])
    assert not _matches(["a 0.5007 b"], ["a 0.5107 b"])
    assert not _matches(["sports 1.000"], ["tech 1.000"])
    assert _matches(["x", "..."], ["x"]) and not _matches(["x"], ["x", "y"])


def console_steps(text: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` pairs of a console block."""
    steps: list[tuple[list[str], list[str]]] = []
    continuing = False
    for line in text.split("\n"):
        if continuing:
            steps[-1][0].append(line)
        elif line.startswith("$ "):
            steps.append(([line[2:]], []))
        elif steps:
            steps[-1][1].append(line)
        elif line.strip():
            raise ValueError(f"console block text before its first '$ ' command: {line!r}")
        continuing = line.endswith("\\") and (continuing or line.startswith("$ "))
    return [("\n".join(cmd), "\n".join(out)) for cmd, out in steps]


def test_console_steps() -> None:
    steps = console_steps("$ a \\\n   b\nout 1\n\n$ c\nout 2")
    assert steps == [("a \\\n   b", "out 1\n"), ("c", "out 2")]


# -- running blocks ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory):
    """The folder the blocks run in, and their environment."""
    base = tmp_path_factory.mktemp("readme")
    work = base / "main"
    shutil.copytree(ROOT / "datasets" / "examples", work)
    if SHARED.is_dir():
        (base / "shared").symlink_to(SHARED, target_is_directory=True)
        if (DATASETS / "wikipedia" / DUMP).is_file():
            (work / DUMP).symlink_to(DATASETS / "wikipedia" / DUMP)
    (base / "home").mkdir()
    with FakeWiki() as fake:
        env = {**os.environ,
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "HOME": str(base / "home"),
               "SIMTOOLS_CACHE_DIR": str(base / "cache"),
               "SIMTOOLS_WIKIPEDIA_API_URL": fake.api_url,
               "PYTHONUNBUFFERED": "1",  # stdout and stderr lines in the order they were written
               "HF_HUB_OFFLINE": "1"}
        yield work, env


def _run(argv: list[str], work: Path, env: dict[str, str], where: str, *,
         merged: bool = False) -> str:
    """The command's stdout (``merged``: stdout and stderr interleaved); it must exit 0."""
    try:
        done = subprocess.run(argv, cwd=work, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT if merged else subprocess.PIPE,
                              text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{where}: still running after {TIMEOUT} s", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"{where}: exit status {done.returncode}\n{done.stdout}{done.stderr or ''}",
                    pytrace=False)
    return done.stdout


def _bash(script: str) -> list[str]:
    return ["bash", "-e", "-o", "pipefail", "-c", script]


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang in RUNNABLE], ids=lambda b: b.id)
def test_block_runs_as_written(block: Block, scratch) -> None:
    work, env = scratch
    if "skip" in block.markers:
        pytest.skip(block.markers["skip"] or "marked skip")
    needed = block.markers.get("needs")
    if needed and not (work / needed).exists():
        pytest.skip(f"needs {needed}, which is absent (the shared datasets folder is not "
                    "beside the checkout)")
    if block.lang == "python":
        out = _run([sys.executable, "-c", block.text], work, env, block.id)
    elif block.lang == "bash":
        out = _run(_bash(block.text), work, env, block.id)
    else:
        for command, expected in console_steps(block.text):
            out = _run(_bash(command), work, env, f"{block.id}: $ {command.splitlines()[0]}",
                       merged=True)
            if "unchecked" not in block.markers:
                check_output(expected, out, block.id)
        return
    if block.output is not None:
        check_output(block.output, out, block.id)


# -- what the blocks rely on -------------------------------------------------------------------
def test_every_marker_is_understood_and_every_output_has_a_block() -> None:
    for block in BLOCKS:
        if block.lang not in RUNNABLE:
            assert not block.markers, f"{block.id}: markers on a block that never runs"
        if "unchecked" in block.markers:
            assert block.lang == "console", f"{block.id}: 'unchecked' is for console blocks"
    assert sum(b.lang in RUNNABLE and "skip" not in b.markers for b in BLOCKS) >= 15


def _two_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands), commands
    return commands


def test_ci_runs_the_readme_commands_verbatim() -> None:
    main_job, tests = _two_commands()
    lines = [line for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").split("\n")
             if line.strip()]
    assert "set -euo pipefail" in lines
    # A failure inside an && list does not stop a `set -e` script: the main job exits itself.
    assert any(line.startswith(f"{main_job} || ") and line.endswith("exit 1; }")
               for line in lines), lines
    assert lines[-1] == tests  # the script's exit status is the test command's


def test_the_two_commands_make_and_use_a_virtual_environment() -> None:
    for command in _two_commands():
        words = shlex.split(command)
        assert words[:4] == ["python3", "-m", "venv", ".venv"], command
        assert all(w in ("&&", ".venv") or not w.startswith(("pip", "python", "simtools"))
                   for w in words[4:]), f"{command}: use .venv/bin/..."
