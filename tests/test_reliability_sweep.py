"""The reliability sweep of benchmarks/reliability/sweep.py, run with a small budget.

The full sweep (30 kills, a 60 s race, 300 + 300 damaged files, 5,000 hostile lines) is a
benchmark; this runs the same code at smoke size, so CI sees any target missed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_reliability_sweep_meets_every_target():
    pytest.importorskip("faiss")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks/reliability/sweep.py"),
                           "--quick", "--no-json"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "False" not in done.stdout
