"""The layout of a versioned folder: its names, and what an output path holds (may we save?)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from ..errors import FormatError, OutputExistsError
from ..persistence import CONFIG_NAME, read_json

__all__ = ["LAYOUT", "LAYOUT_VERSION", "LOCK_NAME", "READERS_NAME", "check_output"]

logger = logging.getLogger(__name__)

LAYOUT = "versioned"
LAYOUT_VERSION = 1
LOCK_NAME = ".simtools.lock"
READERS_NAME = ".readers"
_VERSION = re.compile(r"v(\d{1,12})-[0-9a-f]{8}")
_TEMP = re.compile(r"\.v\d{1,12}-[0-9a-f]{8}\.tmp")
# persistence.atomic_write's temporary for the manifest (mkstemp: prefix, random part, suffix)
_MANIFEST_TEMP = re.compile(r"\.config\.json\.[A-Za-z0-9_]{1,32}\.tmp")
# What simtools 0.1 wrote directly into a folder: the only entries a conversion removes.
_LEGACY_NAMES = frozenset({
    "config.json", "documents.jsonl", "norms.npy", "encoder", "vectors.npy",
    "vectors.safetensors", "index.faiss", "wiki_build.json", "encoder.safetensors",
    "model.safetensors", "history.json",
})
_OPEN_ATTEMPTS = 50
_LEGACY_DEBRIS_AGE = 3600.0  # seconds


def _is_manifest(config: Any) -> bool:
    return isinstance(config, dict) and config.get("layout") == LAYOUT


def _ours(name: str) -> bool:
    """Entries of a versioned folder's own machinery (besides ``config.json``)."""
    return name == LOCK_NAME or any(
        pattern.fullmatch(name) for pattern in (_VERSION, _TEMP, _MANIFEST_TEMP))


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


# -- what an output path holds ----------------------------------------------------------------
def _survey(path: Path) -> tuple[str, Any]:
    """What ``path`` holds: ("new" | "empty" | "simtools" | "foreign config" | "foreign", detail).

    For "simtools" the detail is ``(kind, config)``; for "foreign" the foreign entry names.
    """
    if not os.path.lexists(path):
        return "new", None
    if not path.is_dir():
        what = "a broken symbolic link" if path.is_symlink() else "a file"
        raise OutputExistsError(f"{path} is {what}, not a folder")
    names = sorted(os.listdir(path))
    if CONFIG_NAME in names:
        try:
            config = read_json(path / CONFIG_NAME)
        except FormatError:
            config = None
        if isinstance(config, dict) and isinstance(config.get("kind"), str) and (
                _is_manifest(config) or "format_version" in config):
            return "simtools", (config["kind"], config)
        return "foreign config", None
    foreign = [name for name in names if not _ours(name)]
    return ("foreign", foreign) if foreign else ("empty", None)


def check_output(path: str | os.PathLike[str], *, kind: str, force: bool = False) -> None:
    """Raise :class:`OutputExistsError` unless a ``kind`` may be saved at ``path``.

    Allowed: a new path, an empty folder, a simtools ``kind`` folder (a new version replaces the
    current one). With ``force``: also a simtools folder of another kind (replaced) and a folder
    of foreign files without a ``config.json`` (saved beside them; they are left untouched).
    Call it before long work, so that a bad output path fails at once.
    """
    path = Path(path)
    state, detail = _survey(path)
    if state == "foreign config":
        raise OutputExistsError(
            f"{path} holds a config.json that simtools did not write (simtools never overwrites "
            "files it did not write, even when forced)")
    if state == "simtools" and detail[0] != kind and not force:
        raise OutputExistsError(f"{path} holds a simtools {detail[0]}, not {_article(kind)}",
                                force_does=f"replace that {detail[0]}")
    if state == "foreign" and not force:
        sample = ", ".join(repr(name) for name in detail[:3])
        more = ", ..." if len(detail) > 3 else ""
        raise OutputExistsError(
            f"{path} is not empty and is not a simtools folder (it holds {len(detail)} "
            f"entr{'y' if len(detail) == 1 else 'ies'}: {sample}{more})",
            force_does="save beside those files (they are left untouched)")


def _recover_interrupted_swap(folder: Path) -> None:
    """simtools 0.1 swapped folders with two renames; a crash between them left the target
    missing and the previous copy hidden as ``.NAME.old-*``. Put the newest such copy back."""
    if os.path.lexists(folder) or not folder.parent.is_dir():
        return
    olds = [p for p in folder.parent.glob(f".{folder.name}.old-*")
            if p.is_dir() and not p.is_symlink() and (p / CONFIG_NAME).is_file()]
    if olds:
        newest = max(olds, key=lambda p: p.stat().st_mtime)
        with contextlib.suppress(OSError):
            os.rename(newest, folder)
            logger.warning("%s was missing after an interrupted save; restored it from %s",
                           folder, newest.name)


def _remove_legacy_debris(folder: Path) -> None:
    """simtools 0.1 saved through hidden copies beside the folder (``.NAME.tmp-XXXXXXXX``,
    ``.NAME.old-XXXXXXXX``) and a killed save left them behind. Remove those an hour old or
    more: 0.1 took no lock, so a younger one may still belong to a save in progress."""
    pattern = re.compile(rf"\.{re.escape(folder.name)}\.(tmp|old)-[a-z0-9_]{{8}}")
    cutoff = time.time() - _LEGACY_DEBRIS_AGE
    with contextlib.suppress(OSError):
        for entry in os.listdir(folder.parent):
            path = folder.parent / entry
            if (pattern.fullmatch(entry) and not path.is_symlink() and path.is_dir()
                    and path.stat().st_mtime < cutoff):
                shutil.rmtree(path, ignore_errors=True)
                logger.info("removed %s, left by an interrupted save of simtools 0.1", path)
