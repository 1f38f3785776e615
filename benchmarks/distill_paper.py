"""Reproduce the MNIST table of Hinton, Vinyals & Dean (2015) on Fashion-MNIST: the command.

The experiment lives in ``benchmarks/paper_fashion_mnist/`` (its docstring tells the rows, the
options and where the results go); this script runs it::

    python benchmarks/distill_paper.py --quick --epochs 1   # smoke run
    python benchmarks/distill_paper.py --seeds 0,1,2        # the committed table
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.paper_fashion_mnist import *  # noqa: E402,F403  (the names tests and scripts use)
from benchmarks.paper_fashion_mnist import __all__  # noqa: E402,F401
from benchmarks.paper_fashion_mnist.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
