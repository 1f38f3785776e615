"""Hostile input lines: one output record per input line, one bad item never sinks a batch.

`classify -` and `search -` write exactly one record per stdin line, in order, whatever the
line holds (blank, control characters, U+2028, emoji, a lone \\r, 100,000 characters); `index
files` skips documents it cannot place and says which; a closed pipe ends a command quietly.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest
from click.testing import CliRunner
from simtools_cli.main import main

BBC = {"business", "entertainment", "politics", "sports", "tech"}
DOCS = {"football.txt": "football is a team sport; players score a goal in the match",
        "tennis.txt": "tennis players hit the ball over the net with a racket",
        "chips.txt": "computer chips run software faster every year"}


def run(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(main, list(args), input=input)


def lines_of(stdin: str) -> list[str]:
    """The lines a command must answer: split at "\\n" only, CRLF taken as one line end."""
    lines = stdin.replace("\r\n", "\n").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("docs")
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    out = tmp_path_factory.mktemp("indexes") / "idx"
    result = run("index", "files", str(root), "--out", str(out), "--encoder", "count")
    assert result.exit_code == 0, result.output
    return out


# -- classify ---------------------------------------------------------------------------------
def test_blank_lines_keep_their_place():
    result = run("classify", "-", input="a new phone with a faster chip\n\nthe film won an award\n")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.split("\n")[:-1]]
    assert [row[0] for row in rows][1] == "EMPTY" and len(rows) == 3
    assert rows[1] == ["EMPTY", "-", ""]
    assert rows[0][0] in BBC and rows[2][0] in BBC


@pytest.mark.parametrize("line", ["\x1c", "\u2028", "\x0b", "\x0c", "   ", "\t", "\x85", "\u3000"])
def test_lines_that_strip_empties_are_answered(line):
    stdin = f"football goal\n{line}\nshares fell\n"
    result = run("classify", "-", input=stdin)
    assert result.exit_code == 0, result.output
    rows = result.stdout.split("\n")[:-1]
    assert len(rows) == 3 and rows[1].startswith("EMPTY\t-\t")


def test_a_control_character_line_does_not_sink_classify():
    result = run("classify", "-", input="The striker scored twice\n\x01\x02\nMPs vote on the budget\n")
    assert result.exit_code == 0, result.output
    labels = [line.split("\t")[0] for line in result.stdout.split("\n")[:-1]]
    assert labels == ["sports", "EMPTY", "politics"]
    assert "Warning: 1 of 3 line(s)" in result.stderr and "line 2" in result.stderr


def test_unknown_and_empty_lines_exit_zero_with_a_warning():
    result = run("classify", "-", input="The striker scored twice\n안녕하세요\n\n")
    assert result.exit_code == 0
    assert [line.split("\t")[0] for line in result.stdout.split("\n")[:-1]] == [
        "sports", "UNKNOWN", "EMPTY"]
    warning, = [line for line in result.stderr.splitlines() if line.startswith("Warning")]
    assert "1 EMPTY" in warning and "1 UNKNOWN" in warning and "--allow-unknown" in warning


def test_empty_lines_in_json_are_records_too():
    result = run("classify", "-", "--json", input="\n\x01\nthe film won an award\n")
    rows = [json.loads(line) for line in result.stdout.split("\n")[:-1]]
    assert [r["text"] for r in rows] == ["", "\x01", "the film won an award"]
    assert rows[0]["label"] is None and rows[0]["probabilities"] == {}
    assert rows[0]["error"].startswith("EMPTY")
    assert rows[2]["label"] in BBC


def test_a_raw_carriage_return_is_never_echoed_into_tsv():
    result = run("classify", "-", input="shares\rfell\nthe film\r\n\r\n")
    assert result.exit_code == 0, result.output
    assert "\r" not in result.stdout
    rows = result.stdout.split("\n")[:-1]
    assert len(rows) == 3
    assert rows[0].endswith("\tshares\\rfell") and rows[1].endswith("\tthe film")
    assert rows[2].startswith("EMPTY")


def test_the_last_line_needs_no_newline():
    assert len(run("classify", "-", input="a goal\nshares").stdout.split("\n")[:-1]) == 2
    assert run("classify", "-", input="\n").stdout == "EMPTY\t-\t\n"


def test_an_empty_argument_is_a_record_too():
    result = run("classify", "", "a late goal")
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == ["EMPTY", "sports"]


def test_classify_with_an_index_answers_every_line(index_dir):
    result = run("classify", "--index", str(index_dir), "-k", "1", "-",
                 input="football goal\n\nzzz qqq\n\x01\nsoftware chips\n")
    assert result.exit_code == 0, result.output
    labels = [line.split("\t")[0] for line in result.stdout.split("\n")[:-1]]
    assert labels == ["football.txt", "EMPTY", "UNKNOWN", "EMPTY", "chips.txt"]
    assert "no token this index's encoder knows" in result.stderr


def test_exit_status_is_documented():
    for command in (["classify"], ["search"], ["index", "files"]):
        text = run(*command, "--help").stdout
        assert "Exit status:" in text and "0    " in text and "1    " in text, command
        assert "141" in text or command[0] == "index", command


# -- search -----------------------------------------------------------------------------------
def test_a_control_character_line_does_not_sink_search(index_dir):
    result = run("search", "-", "--index", str(index_dir), "--json", "-k", "1",
                 input="football goal\n\x01\n\nzzz\nsoftware\n")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.split("\n")[:-1]]
    assert [r["query"] for r in rows] == ["football goal", "\x01", "", "zzz", "software"]
    assert [r.get("error", "OK").split(":")[0] for r in rows] == ["OK", "EMPTY", "EMPTY",
                                                                  "UNKNOWN", "OK"]
    assert list(rows[0]) == ["query", "metric", "neighbours"]
    assert list(rows[1]) == ["query", "metric", "neighbours", "error"]
    assert [len(r["neighbours"]) for r in rows] == [1, 0, 0, 0, 1]
    assert rows[0]["neighbours"][0]["title"] == "football.txt"
    assert "Warning: 3 of 5 line(s) could not be searched" in result.stderr


def test_search_table_marks_unsearchable_queries(index_dir):
    result = run("search", "-", "--index", str(index_dir), "-k", "1", input="zzz\r\n\ngoal\n")
    assert result.exit_code == 0, result.output
    assert "\r" not in result.stdout
    assert result.stdout.splitlines() == [
        "query: zzz", "   -  UNKNOWN: no token this index's encoder knows",
        "query: ", "   -  EMPTY: nothing visible (blank, whitespace or control characters)",
        "query: goal", result.stdout.splitlines()[-1]]
    assert "football.txt" in result.stdout.splitlines()[-1]


# -- index files ------------------------------------------------------------------------------
def _tweets(tmp_path):
    rows = ["football goal in the final minute", "P O S T E D. \u2026", "the market fell today",
            "\U0001F440", "tennis racket at the net"]
    path = tmp_path / "tweets.jsonl"
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in rows),
                    encoding="utf-8")
    return path


def test_index_files_skips_documents_without_a_known_token(tmp_path):
    result = run("index", "files", str(_tweets(tmp_path)), "--out", str(tmp_path / "idx"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["documents"] == 3
    assert summary["skipped"] == [{"source": str(tmp_path / "tweets.jsonl"), "line": 2},
                                  {"source": str(tmp_path / "tweets.jsonl"), "line": 4}]
    warning, = [line for line in result.stderr.splitlines() if line.startswith("Warning")]
    assert "skipped 2 document(s)" in warning and "line 2" in warning and "line 4" in warning
    assert "--strict" in warning
    found = json.loads(run("search", "market", "--index", str(tmp_path / "idx"), "--json",
                           "-k", "3").stdout)
    # only the tweet that shares a word with the query; the others are not neighbours
    assert {n["title"] for n in found["neighbours"]} == {"tweets.jsonl:3"}


def test_index_files_strict_fails_and_writes_nothing(tmp_path):
    result = run("index", "files", str(_tweets(tmp_path)), "--out", str(tmp_path / "idx"),
                 "--strict")
    assert result.exit_code == 1 and "Traceback" not in result.output
    error, = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert "tweets.jsonl line 2" in error and "no token" in error and "drop --strict" in error
    assert not (tmp_path / "idx").exists()


def test_index_files_where_no_document_has_a_known_token(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"text": "\U0001F440"}) + "\n", encoding="utf-8")
    result = run("index", "files", str(path), "--out", str(tmp_path / "idx"), "--encoder",
                 "hashing")
    assert result.exit_code == 1 and "all 1 document(s) were skipped" in result.stderr
    assert not (tmp_path / "idx").exists()


# -- a closed pipe ----------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["classify", "search"])
def test_a_closed_pipe_ends_quietly(command, index_dir, tmp_path):
    stdin = tmp_path / "in.txt"
    stdin.write_text("football goal in the match\n" * 40_000, encoding="utf-8")
    args = [sys.executable, "-m", "simtools", command, "-"]
    if command == "search":
        args += ["--index", str(index_dir)]
    with open(stdin, "rb") as handle:
        proc = subprocess.Popen(args, stdin=handle, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline()  # like `| head -1`: read a line, then go away
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 141
    assert err == ""


# -- fuzz -------------------------------------------------------------------------------------
_PIECES = (["football", "goal", "tennis", "software", "shares", "market", "the", "a", "zzz",
            "P O S T E D.", "\u2026", "!", "#tag", "@user", "42", "안녕하세요", "日本語", "Ελλάδα",
            "\U0001F440", "\U0001F389", "\U0001F3FB", "\u200d", "\ufeff", "\u00ad", "e\u0301",
            " ", "  ", "\t", "\xa0", "\u3000", "\u2028", "\u2029", "\x85", "\r", "\x7f", "\\"]
           + [chr(c) for c in range(32) if c != 10])


def _fuzz_lines(seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    lines = []
    for i in range(n):
        roll = rnd.random()
        if roll < 0.1:
            lines.append("")
        elif i % 1000 == 7:
            lines.append(" ".join(rnd.choice(_PIECES[:9]) for _ in range(20_000)))  # ~130 kB
        else:
            lines.append("".join(rnd.choice(_PIECES) for _ in range(rnd.randint(1, 8))))
    return lines


def test_fuzz_classify_answers_every_line():
    stdin = "\n".join(_fuzz_lines(16, 4000)) + "\n"
    expected = lines_of(stdin)
    result = run("classify", "-", input=stdin.encode())
    assert result.exit_code == 0, result.output
    assert "\r" not in result.stdout
    rows = result.stdout.split("\n")[:-1]
    assert len(rows) == len(expected) == 4000
    assert {row.split("\t")[0] for row in rows} <= BBC | {"EMPTY", "UNKNOWN"}
    texts = [row.split("\t", 2)[2] for row in rows]
    assert texts == [line.replace("\r", "\\r") for line in expected]
    records = [json.loads(line) for line in run("classify", "-", "--json", "--allow-unknown",
                                                input=stdin.encode()).stdout.split("\n")[:-1]]
    assert [r["text"] for r in records] == expected


def test_fuzz_search_answers_every_line(index_dir):
    stdin = "\n".join(_fuzz_lines(17, 4000))  # no newline after the last line
    expected = lines_of(stdin)
    result = run("search", "-", "--index", str(index_dir), "--json", "-k", "2", input=stdin.encode())
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.split("\n")[:-1]]
    assert len(rows) == len(expected) == 4000
    assert [r["query"] for r in rows] == expected
    assert all(len(r["neighbours"]) == 0 for r in rows if "error" in r)
    # fewer than k when fewer documents share a word with the query
    assert all(len(r["neighbours"]) <= 2 for r in rows)


def test_a_newline_inside_an_argument_stays_on_its_line(index_dir):
    result = run("classify", "shares fell\nsharply", "a goal\r")
    assert result.exit_code == 0, result.output
    rows = result.stdout.split("\n")[:-1]
    assert len(rows) == 2
    assert rows[0].endswith("\tshares fell\\nsharply") and rows[1].endswith("\ta goal\\r")
    result = run("search", "goal\nmatch", "--index", str(index_dir), "-k", "1")
    assert result.stdout.splitlines()[0] == "query: goal\\nmatch"
