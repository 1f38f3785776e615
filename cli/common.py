"""Helpers shared by the commands: reading texts, one-line errors, JSON output, progress."""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import click

__all__ = ["LazyGroup", "emit_json", "friendly_errors", "progress", "read_texts"]

F = TypeVar("F", bound=Callable[..., Any])


def read_texts(args: Iterable[str], *, what: str = "text") -> list[str]:
    """The texts given as arguments; ``-`` reads one per line from stdin (blank lines skipped)."""
    texts: list[str] = []
    for arg in args:
        if arg == "-":
            data = sys.stdin.buffer.read()
            try:
                # "\n" only: splitlines() would also split a text at U+2028, U+0085 or \f, and
                # the outputs would no longer line up with the input lines.
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise click.UsageError(f"stdin is not UTF-8 ({e}); convert it, e.g. with iconv") from None
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            # filter() with a C predicate: no Python-level loop over a million lines.
            texts.extend(filter(str.strip, text.split("\n")))
        else:
            texts.append(arg)
    if not texts:
        raise click.UsageError(f"no {what} given; pass it as an argument or '-' to read stdin")
    return texts


def emit_json(obj: Any) -> None:
    """One JSON object on one line of stdout."""
    click.echo(json.dumps(obj, ensure_ascii=False))


def friendly_errors(func: F) -> F:
    """Turn library errors into a one-line message and exit status 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (ValueError, TypeError, OSError, KeyError, ImportError) as e:
            message = str(e) if not isinstance(e, KeyError) else f"missing key {e}"
            raise click.ClickException(message.splitlines()[0] if message else type(e).__name__) from None

    return wrapper  # type: ignore[return-value]


def progress(iterable: Iterable[Any], *, length: int | None = None, label: str = "") -> Iterator[Any]:
    """A progress bar on stderr (hidden when stderr is not a terminal)."""
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


def _unavailable(name: str, error: ImportError) -> click.Command:
    def fail() -> None:
        raise click.ClickException(f"'{name}' is unavailable: {error}")

    return click.Command(name, callback=fail, help=f"Unavailable: {error}",
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
