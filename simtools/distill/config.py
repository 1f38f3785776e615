"""Distillation settings: one validated dataclass, and the method names.

``DistillConfig`` checks every value in ``__post_init__`` so that a bad setting fails before
the (slow) teacher is fitted, with a message that names the value and the valid range.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from .._validation import check_int

__all__ = ["DEFAULT_METHODS", "LR_SCHEDULES", "DistillConfig", "Method", "describe_setting",
           "parse_methods"]


class Method(str, Enum):
    """Ways of transferring the teacher's knowledge; several combine (README, "Methods")."""

    NONE = "none"                # hard labels only: the baseline
    SOFT = "soft"                # Hinton, Vinyals, Dean 2015: soft targets at temperature T
    LOGITS = "logits"            # Ba & Caruana 2014: squared error on the teacher's logits
    NOISY = "noisy"              # Sau & Balasubramanian 2016: noise on the teacher's logits
    COMPRESSION = "compression"  # Bucilua et al. 2006: a grown, teacher-labelled transfer set
    EMBEDDING = "embedding"      # regress the teacher's sentence embedding (cosine)


#: How the learning rate moves during training: held, or falling linearly to zero.
LR_SCHEDULES = ("constant", "linear")

#: The combination that measured best (the README's distillation results have the table).
DEFAULT_METHODS: tuple[Method, ...] = (Method.SOFT, Method.EMBEDDING)


def parse_methods(value: str | Method | Iterable[str | Method]) -> tuple[Method, ...]:
    """``"soft,embedding"`` (or a list of names) -> a tuple of :class:`Method`, in enum order."""
    items = value.split(",") if isinstance(value, str) else list(value)
    found: set[Method] = set()
    for item in items:
        name = str(item.value if isinstance(item, Method) else item).strip().lower()
        if not name:
            continue
        try:
            found.add(Method(name))
        except ValueError:
            valid = ", ".join(m.value for m in Method)
            raise ValueError(f"unknown distillation method {name!r}; valid methods are {valid} "
                             "(combine them with commas, e.g. soft,embedding)") from None
    if not found:
        raise ValueError("no distillation method given; use e.g. methods='soft,embedding'")
    if Method.NONE in found and len(found) > 1:
        raise ValueError(f"method 'none' (the hard-label baseline) cannot be combined with "
                         f"{', '.join(sorted(m.value for m in found - {Method.NONE}))}; use it alone")
    return tuple(m for m in Method if m in found)


def describe_setting(methods: Iterable[str | Method], temperature: float, alpha: float) -> str:
    """``"soft,embedding, T 4, alpha 0.5"``; T and alpha only where a method uses them (soft)."""
    names = [str(m.value if isinstance(m, Method) else m) for m in methods]
    if Method.SOFT.value in names:
        return f"{','.join(names)}, T {temperature:g}, alpha {alpha:g}"
    return ",".join(names)


@dataclass
class DistillConfig:
    """Every setting of one student's training, checked on creation."""

    methods: tuple[Method, ...] = DEFAULT_METHODS
    temperature: float = 4.0
    alpha: float = 0.5
    epochs: int = 5
    dim: int = 64
    buckets: int = 1 << 17
    char_ngrams: tuple[int, int] = (3, 5)
    word_ngrams: int = 2
    max_chars: int = 4000
    embedding_dim: int = 64
    embedding_weight: float = 1.0
    noise_std: float = 1.0
    noise_fraction: float = 0.5
    augment_copies: int = 2
    lr: float = 0.05
    lr_schedule: str = "constant"
    batch_size: int = 64
    teacher: str = "default"
    quantize: bool = True
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.methods = parse_methods(self.methods)
        self.char_ngrams = tuple(int(v) for v in self.char_ngrams)  # type: ignore[assignment]
        _check_range("temperature", self.temperature, 0.1, 100.0, "e.g. 4 (Hinton et al. used 2-20)")
        _check_range("alpha", self.alpha, 0.0, 1.0, "the weight of the soft targets, e.g. 0.5")
        check_int(self.epochs, "epochs", minimum=1, maximum=1000)
        check_int(self.dim, "dim", minimum=4, maximum=1024)
        check_int(self.embedding_dim, "embedding_dim", minimum=4, maximum=1024)
        check_int(self.word_ngrams, "word_ngrams", minimum=1, maximum=2)
        check_int(self.max_chars, "max_chars", minimum=1, maximum=10**7)
        check_int(self.augment_copies, "augment_copies", minimum=0, maximum=100)
        check_int(self.batch_size, "batch_size", minimum=1, maximum=1 << 16)
        check_int(self.seed, "seed", minimum=0, maximum=2**32 - 1)
        check_int(self.buckets, "buckets", minimum=2, maximum=1 << 26)
        if self.buckets & (self.buckets - 1):
            raise ValueError(f"buckets must be a power of two, got {self.buckets}; "
                             f"e.g. {1 << max(1, self.buckets.bit_length() - 1)}")
        lo, hi = self.char_ngrams
        if (lo, hi) != (0, 0) and not 3 <= lo <= hi <= 8:
            raise ValueError(f"char_ngrams must be (min, max) with 3 <= min <= max <= 8, or (0, 0) "
                             f"for none; got {self.char_ngrams}")
        _check_range("lr", self.lr, 1e-6, 10.0, "e.g. 0.05")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got "
                             f"{self.lr_schedule!r}")
        _check_range("embedding_weight", self.embedding_weight, 0.0, 100.0, "e.g. 1")
        _check_range("noise_std", self.noise_std, 0.0, 100.0, "e.g. 1")
        _check_range("noise_fraction", self.noise_fraction, 0.0, 1.0, "e.g. 0.5")
        if not isinstance(self.teacher, str) or not self.teacher.strip():
            raise ValueError(f"teacher must be a teacher spec such as 'default' or 'sparse', "
                             f"got {self.teacher!r}")

    @property
    def method_string(self) -> str:
        return ",".join(m.value for m in self.methods)

    @property
    def description(self) -> str:
        """The methods, with T and alpha where they apply: see :func:`describe_setting`."""
        return describe_setting(self.methods, self.temperature, self.alpha)

    def uses(self, method: Method) -> bool:
        return method in self.methods

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings (for config.json and history.json)."""
        out = asdict(self)
        out["methods"] = [m.value for m in self.methods]
        out["char_ngrams"] = list(self.char_ngrams)
        return out


def _check_range(name: str, value: Any, lo: float, hi: float, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not lo <= float(value) <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {value}; {hint}")

