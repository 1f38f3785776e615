"""Helpers shared by the commands: reading texts, one-line errors, JSON output, progress."""

from __future__ import annotations

import difflib
import functools
import importlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

import click

# EMPTY and UNKNOWN: the records of an input line with nothing visible, and of one the model
# or index cannot read.
from simtools.classify.lines import EMPTY, EMPTY_REASON, UNKNOWN, split_lines
from simtools.errors import SimtoolsError

__all__ = ["CLOSED_PIPE", "EMPTY", "EMPTY_REASON", "UNKNOWN", "LazyGroup", "emit_json", "encoding_option", "in_flags",
           "friendly_errors", "progress", "read_texts", "tsv_safe", "warn", "warn_unanswered"]

#: Exit status when the reader of stdout goes away (``| head``): 128 + SIGPIPE, as a shell
#: reports for Unix tools that the signal stops.
CLOSED_PIPE = 141

F = TypeVar("F", bound=Callable[..., Any])


ENCODING_HELP = ("Text encoding of the input files, e.g. cp1252 or utf-16; read strictly. "
                 "[default: UTF-8; a file that is not UTF-8 is read as cp1252 (Latin-1 where "
                 "cp1252 leaves a byte undefined), with a warning]")


def _encoding(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from simtools.data import check_encoding

    try:
        return check_encoding(value)
    except ValueError as e:
        raise click.BadParameter(str(e), ctx=ctx, param=param) from None


def encoding_option(func: F) -> F:
    """``--encoding``, for every command that reads files of texts (one decoding policy)."""
    return click.option("--encoding", default=None, callback=_encoding,  # type: ignore[return-value]
                        help=ENCODING_HELP)(func)


def read_texts(args: Iterable[str], *, what: str = "text", keep_blank: bool = False) -> list[str]:
    """The texts given as arguments; ``-`` reads one per line from stdin.

    With ``keep_blank`` every line is kept, blank ones too, so that outputs line up with the
    input lines; otherwise lines that ``str.strip`` empties are skipped. A line ends at "\\n"
    (or "\\r\\n"); the newline after the last line is optional.
    """
    texts: list[str] = []
    for arg in args:
        if arg == "-":
            data = sys.stdin.buffer.read()
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise click.UsageError(f"stdin is not UTF-8 ({e}); convert it, e.g. with iconv") from None
            lines = split_lines(text)
            if keep_blank:
                texts.extend(lines)
            else:
                # filter() with a C predicate: no Python-level loop over a million lines.
                texts.extend(filter(str.strip, lines))
        else:
            texts.append(arg)
    if not texts:
        raise click.UsageError(f"no {what} given; pass it as an argument or '-' to read stdin")
    return texts


def emit_json(obj: Any) -> None:
    """One JSON object on one line of stdout."""
    click.echo(json.dumps(obj, ensure_ascii=False))


def tsv_safe(text: str) -> str:
    """``text`` on one line: each carriage return and newline written as the two characters
    ``\\r`` and ``\\n`` (a raw one would end the line, for readers with universal newlines)."""
    if "\r" in text:
        text = text.replace("\r", "\\r")
    return text.replace("\n", "\\n") if "\n" in text else text


def warn(message: str) -> None:
    """One warning line on stderr."""
    click.echo(f"Warning: {message}", err=True)


def warn_unanswered(texts: Sequence[str] | int, unknown: Sequence[int], empty: Sequence[int], *,
                    verb: str, reason: str, advice: str, example: str | None = None) -> None:
    """Warn about the input lines written as UNKNOWN (``reason``) or EMPTY (0-based positions).
    ``texts`` is the input lines, or their number with ``example`` the first UNKNOWN one."""
    if not unknown and not empty:
        return
    parts = []
    if empty:
        parts.append(f"{len(empty)} {EMPTY} (nothing visible, e.g. line {empty[0] + 1})")
    if unknown:
        first = unknown[0]
        shown = texts[first] if example is None and not isinstance(texts, int) else example
        parts.append(f"{len(unknown)} {UNKNOWN} ({reason}, e.g. line {first + 1}: "
                     f"{(shown or '')[:40]!r}; {advice})")
    total = texts if isinstance(texts, int) else len(texts)
    warn(f"{len(unknown) + len(empty)} of {total} line(s) could not be {verb}: "
         f"{', '.join(parts)}; they are marked so in the output")


def friendly_errors(func: F) -> F:
    """Turn the errors a user can cause into a one-line message and exit status 1.

    Those are simtools' own errors (SimtoolsError), file-system errors (OSError), a missing
    optional dependency (ImportError: its message says what to install) and the ValueErrors
    that parts of the library still raise for bad input. Anything else (TypeError, KeyError,
    ...) is a bug and keeps its traceback. When the reader of stdout goes away (``| head``)
    the command stops quietly, with status 141.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = func(*args, **kwargs)
            sys.stdout.flush()  # so that a closed pipe shows here, not at interpreter exit
            return result
        except click.ClickException:
            raise
        except BrokenPipeError:
            _stop_at_closed_pipe()
        except (SimtoolsError, OSError, ValueError, ImportError) as e:
            message = in_flags(str(e))
            raise click.ClickException(message.splitlines()[0] if message else type(e).__name__) from None

    return wrapper  # type: ignore[return-value]


# The library words its advice in arguments (``resume=True``, ``encoder='char'``); on the command
# line the same advice names the flags. Only these arguments are rewritten.
_SWITCHES = {"resume=True": "--resume", "force=True": "--force",
             "check_scripts=False": "--allow-unknown"}
_VALUED = {"encoder": "--encoder", "split": "--split", "teacher": "--teacher",
           "methods": "--method", "metric": "--metric", "backend": "--backend"}
_VALUED_RE = re.compile(r"\b(" + "|".join(_VALUED) + r")='([^']*)'")
_BARE = {"api_url": "--api-url"}
_BARE_RE = re.compile(r"\b(" + "|".join(_BARE) + r")\b")


def in_flags(message: str) -> str:
    """A library message with its argument advice said in flags (``resume=True`` -> ``--resume``)."""
    for argument, flag in _SWITCHES.items():
        message = message.replace(argument, flag)
    message = _VALUED_RE.sub(lambda m: f"{_VALUED[m.group(1)]} {m.group(2)}", message)
    return _BARE_RE.sub(lambda m: _BARE[m.group(1)], message)


def _stop_at_closed_pipe() -> NoReturn:
    # Python flushes stdout again at exit and would print the error there: point the file
    # descriptor at /dev/null first (a stdout without one, as in tests, needs nothing).
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(CLOSED_PIPE)


def progress(iterable: Iterable[Any], *, length: int | None = None, label: str = "") -> Iterator[Any]:
    """A progress bar on stderr; nothing when stderr is not a terminal (click would print the
    label there once per bar, doubling the log lines beside it)."""
    if not sys.stderr.isatty():
        yield from iterable
        return
    with click.progressbar(iterable, length=length, label=label, file=sys.stderr,
                           show_pos=True, show_eta=True) as bar:
        yield from bar


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they run (keeps start-up fast).

    ``lazy`` maps a command name to ``"module:attribute"``.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, _, attr = self.lazy[name].partition(":")
            try:
                return getattr(importlib.import_module(module), attr)
            except ImportError as e:
                # One command whose module or extra is missing must not break `--help` or the
                # other commands; running it says why it is unavailable.
                return _unavailable(name, e)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        # click suggests close matches for options but, before 8.4, not for commands, and it
        # never sees the lazy ones: suggest from every name this group knows.
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as e:
            name = args[0] if args else ""
            known = self.list_commands(ctx)
            close = difflib.get_close_matches(name, known, n=3)
            if name.startswith("-") or name in known or not close:
                raise
            hint = " or ".join(repr(c) for c in close)
            raise click.UsageError(f"No such command {name!r}. Did you mean {hint}?",
                                   e.ctx) from None


def _unavailable(name: str, error: ImportError) -> click.Command:
    def fail() -> None:
        raise click.ClickException(f"'{name}' is unavailable: {error}")

    return click.Command(name, callback=fail, help=f"Unavailable: {error}",
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
