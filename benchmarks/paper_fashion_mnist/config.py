"""What decides the numbers (``Config``, written into the JSON beside them) and the paper's
figures they are set against."""

from __future__ import annotations

import dataclasses
from typing import Any

# Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural Network", section 3 and
# table 3. MNIST errors are counts on its 10,000 test images; speech figures are frame accuracy.
PAPER: dict[str, Any] = {
    "mnist_test_errors": {"teacher": 67, "small": 146, "distilled_T20": 74},
    "mnist_gap_recovered": (146 - 74) / (146 - 67),
    "speech_3pct_frame_accuracy": {"hard_labels": 0.445, "soft_targets": 0.570},
}




@dataclasses.dataclass
class Config:
    """Everything that decides the numbers; written into the JSON beside them."""

    dataset: str
    teacher_members: int
    teacher_hidden: int
    teacher_dropout: float
    teacher_input_dropout: float
    teacher_epochs: int
    student_hidden: int
    student_epochs: int
    temperatures: list[float]
    alpha: float
    alpha_sweep: list[float]
    max_shift: int
    small_data_fraction: float
    small_data_epochs: int
    small_data_temperature: float | None
    batch_size: int
    lr: float
    seed: int
    threads: int
    device: str
    #: "test", or "validation" (held-out training images): see ``--validation``.
    evaluated_on: str = "test"
