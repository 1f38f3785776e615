"""A piece of a build's work, wherever it runs: the documents it made, encoded.

A *prepare* function (module-level, so that a worker process or a Ray actor can run it) turns
a payload (raw dump pages, a byte range of a multistream dump, rows of a table) into a
:class:`Prepared`; :func:`encode_prepared` encodes its documents with the fitted encoder.
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..data import Document
from ..encoders.known import encode_texts

__all__ = ["Prepare", "Prepared", "cpu_time", "encode_prepared", "peak_rss_mib"]


@dataclass
class Prepared:
    """What a piece of work made: its documents, and what the source wants to know of it
    (counts of pages skipped, ids for de-duplication, CPU seconds by stage)."""

    documents: list[Document]
    info: Any = None
    seconds: dict[str, float] = field(default_factory=dict)


#: turns a task's payload into documents (a module-level function: it may run in a worker)
Prepare = Callable[[Any], Prepared]


def cpu_time() -> float:
    """CPU seconds of this process (user + system)."""
    return time.process_time()


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory so far, in MiB (``ru_maxrss``): of this process by default, of the
    largest finished child process with ``resource.RUSAGE_CHILDREN``."""
    peak = resource.getrusage(who).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def encode_prepared(encoder: Any, prepared: Prepared) -> tuple[Any, Any, dict[str, float]]:
    """``(vectors, known, {"encode": CPU seconds})`` for the documents of ``prepared``."""
    started = cpu_time()
    vectors, known = None, None
    texts = [d.text for d in prepared.documents]
    if texts:
        vectors, known = encode_texts(encoder, texts)
    return vectors, known, {"encode": cpu_time() - started}
