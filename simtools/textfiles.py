"""Reading a text file, the one decoding policy of every reader of simtools.

Files are read as UTF-8 (a byte-order mark is dropped). A file that is not valid UTF-8 is read
as cp1252 (Windows' Western European encoding, a superset of Latin-1's printable characters),
or as Latin-1 where cp1252 leaves a byte undefined, and a warning names the file.
``encoding="..."`` reads every file with that codec instead, strictly: a byte it cannot decode
is a :class:`TextDecodingError`.
"""

from __future__ import annotations

import codecs
import logging
import os
from pathlib import Path

from .errors import InputError

__all__ = ["TextDecodingError", "check_encoding", "read_text_file"]

logger = logging.getLogger(__name__)


class TextDecodingError(InputError):
    """A file that the encoding it was read with cannot decode (``path``, ``encoding``,
    ``offset`` of the first bad byte)."""

    def __init__(self, path: Path, encoding: str, offset: int) -> None:
        super().__init__(f"{path} is not {encoding} text (bad byte at offset {offset}); give "
                         "the file's real encoding, or encoding=None to read UTF-8 with a "
                         "cp1252 fallback")
        self.path, self.encoding, self.offset = path, encoding, offset


def check_encoding(encoding: str | None) -> str | None:
    """``encoding`` as a codec name Python knows (``None``: UTF-8 with the fallback)."""
    if encoding is None:
        return None
    if not isinstance(encoding, str):
        raise TypeError(f"encoding must be a str or None, got {type(encoding).__name__}")

    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"unknown text encoding {encoding!r}; give a codec name such as "
                         "'utf-8', 'cp1252', 'latin-1' or 'utf-16'") from None


def read_text_file(path: str | os.PathLike[str], *, encoding: str | None = None,
                   quiet: bool = False) -> str:
    """A whole file as text, decoded by the module's policy: UTF-8, else cp1252 (else Latin-1)
    with a warning; or strictly as ``encoding`` when one is given. ``quiet`` logs the fallback
    at debug level instead (for corpora known to mix encodings)."""
    path = Path(path)
    data = path.read_bytes()
    codec = check_encoding(encoding)
    if codec is not None:
        try:
            return data.decode("utf-8-sig" if codec == "utf-8" else codec)
        except UnicodeDecodeError as e:
            raise TextDecodingError(path, str(encoding), e.start) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        offset = e.start
    try:
        text, used = data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        text, used = data.decode("latin-1"), "latin-1"  # Latin-1 decodes every byte
    (logger.debug if quiet else logger.warning)(
        "%s is not UTF-8 (bad byte at offset %d); read it as %s (name its encoding to read "
        "it otherwise)", path, offset, used)
    return text
