"""Test helpers for versioned folders: where the current files are, and re-sealing after an edit.

A test that damages a saved file on purpose to reach a loader's own check (a wrong shape, a
missing line) must also update the manifest's checksums, or the checksum check stops it first.
"""

from __future__ import annotations

import json
from pathlib import Path

from simtools.folders import current_version
from simtools.persistence import file_digest

__all__ = ["live", "reseal"]


def live(folder: Path) -> Path:
    """The folder holding the current version's files."""
    return current_version(folder)


def reseal(folder: Path) -> None:
    """Rewrite the manifest's file table to match the current version's files as they are now."""
    manifest_path = Path(folder) / "config.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    version = Path(folder) / manifest["current"]
    files = {}
    for path in sorted(version.rglob("*")):
        if path.is_file() and path.name != ".readers":
            files[path.relative_to(version).as_posix()] = {
                "bytes": path.stat().st_size, "sha256": file_digest(path)}
    manifest["files"] = files
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
