"""Versioned folders: how a saved object (index, encoder, model) is written while others read it.

The folder the user names holds::

    config.json        the manifest: the kind, the current version's name, every file's sha256
    v3-1f2e3d4c/       the current version: the object's own files, never changed once written
    .simtools.lock     present while one process saves (its pid and host, for the error message)

A save writes a new version beside the current one, hidden until complete
(``.v4-9a8b7c6d.tmp/``), fsyncs it, renames it to ``v4-9a8b7c6d/`` and then replaces
``config.json`` with one ``os.replace``: the only step a reader can observe, so a reader sees
the old index or the new one, never a mix, and a crash at any point leaves the old one current.
A reader takes a shared lock on the version it opens (``.readers`` inside it) and checks every
file against the manifest's checksums before the object is built from them. The next save
removes old versions that no reader holds and temporaries that no live writer holds (a killed
save). Two writers at once are refused: the second gets :class:`FolderInUseError`.

Nothing here deletes a file simtools did not write: an existing folder is saved into only if it
is empty or a simtools folder of the same kind; ``force=True`` also replaces a simtools folder of
another kind and saves beside foreign files (left untouched), but never over a foreign
``config.json``. Folders of simtools 0.1 (the object's files directly in the folder) are read as
they are, and the first save into one converts it, removing only the files 0.1 wrote.
"""

from __future__ import annotations

from .layout import check_output
from .read import current_version, open_folder
from .write import FolderWriter, save_folder

__all__ = ["FolderWriter", "check_output", "current_version", "open_folder", "save_folder"]
