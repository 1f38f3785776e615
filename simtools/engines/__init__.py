"""Where the work of a build runs: worker processes on this machine (``local``) or a Ray
cluster (``ray``, the ``simtools[ray]`` extra). The library code that says *what* to do
(:mod:`simtools.index.builder`, the dump sources) is the same for both."""

from __future__ import annotations

__all__: list[str] = []
