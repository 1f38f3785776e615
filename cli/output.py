"""``--out`` and ``--force``: where a command saves, checked before any work is done."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["FORCE_HELP", "OUT_HELP", "check_out", "force_option"]

F = TypeVar("F", bound=Callable[..., Any])

OUT_HELP = ("Folder to save to: a new path, an empty folder, or a simtools {kind} folder (saved "
            "as a new version; readers keep seeing the old one until it is complete). Anything "
            "else is refused.")
FORCE_HELP = ("Also save over a simtools folder of another kind (replacing it), or into a folder "
              "of other files (saved beside them; they are never deleted). A config.json that "
              "simtools did not write is never overwritten.")


def force_option(func: F) -> F:
    """The ``--force`` flag of every command that takes ``--out``."""
    return click.option("--force", is_flag=True, help=FORCE_HELP)(func)  # type: ignore[return-value]


def check_out(out: str, *, kind: str, force: bool) -> None:
    """Fail at once, in flag terms, when ``--out`` may not be saved into."""
    from simtools.errors import OutputExistsError
    from simtools.folders import check_output

    try:
        check_output(out, kind=kind, force=force)
    except OutputExistsError as e:
        raise click.ClickException(e.advice("--out", "--force")) from None
