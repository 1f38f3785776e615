"""A piece of work that kills the Ray actor running it once (for tests/test_ray.py): the actor
process exits the first time it meets a marker file, which it removes first."""

from __future__ import annotations

import os
from typing import Any

from simtools.wiki.dump_source import streams_documents


def streams_dying_once(batch: dict[str, Any]) -> Any:
    marker = os.environ.get("SIMTOOLS_TEST_KILL_MARKER", "")
    if marker and os.path.exists(marker):
        os.remove(marker)
        os._exit(1)  # as a node lost or an OOM kill would end it
    return streams_documents(batch)
