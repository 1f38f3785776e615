"""The error types simtools raises on purpose; the CLI turns exactly these into one-line messages.

Each is also a subclass of the built-in it refines, so code that caught ``ValueError`` or
``OSError`` before keeps working. Anything else that escapes (a ``TypeError``, a ``KeyError``)
is a bug in simtools and is shown as one.
"""

from __future__ import annotations

__all__ = [
    "FolderInUseError",
    "FormatError",
    "InputError",
    "OutputExistsError",
    "SimtoolsError",
    "UnknownIdError",
]


class SimtoolsError(Exception):
    """Base class of every error simtools raises on purpose (bad input, damaged files, ...)."""


class InputError(SimtoolsError, ValueError):
    """An argument or input text that simtools cannot use; the message says how to fix it."""


class FormatError(SimtoolsError, ValueError):
    """A saved folder is missing, corrupted, truncated or of an unsupported format version."""


class OutputExistsError(SimtoolsError, FileExistsError):
    """An output path holds something simtools may not replace (files that are not its own).

    ``problem`` says what is there; ``force_does`` what forcing would do (None: forcing cannot
    help). :meth:`advice` words the fix for the library or, with flag names, for the CLI.
    """

    def __init__(self, problem: str, *, force_does: str | None = None) -> None:
        self.problem = problem
        self.force_does = force_does
        super().__init__(self.advice("output path", "force=True"))

    def advice(self, path_word: str, force_word: str) -> str:
        fix = f"choose another {path_word}"
        if self.force_does:
            fix += f", or pass {force_word} to {self.force_does}"
        return f"{self.problem}; {fix}"

    def __str__(self) -> str:
        return self.advice("output path", "force=True")


class FolderInUseError(SimtoolsError, OSError):
    """Another process is writing the same folder (it holds the folder's lock)."""


class UnknownIdError(SimtoolsError, KeyError):
    """An id that the index does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
