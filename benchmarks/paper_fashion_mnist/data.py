"""Fashion-MNIST from its IDX files, sklearn's 8x8 digits, and the splits and jitter the
experiment draws from them."""

from __future__ import annotations

import dataclasses
import gzip
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
APT_HINT = "apt-get install -y dataset-fashion-mnist"
#: The draw of the images that --validation holds out: fixed, so every seed sees the same split.
VALIDATION_SEED = 20150309



@dataclasses.dataclass
class Split:
    """Images as float32 (n, height, width) in [0, 1] and int64 labels (n,)."""

    images: torch.Tensor
    labels: torch.Tensor


def _read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (plain or gzipped) of unsigned bytes into an array of its shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file: its first two bytes must be zero")
    type_code, n_dims = raw[2], raw[3]
    if type_code != 0x08:
        raise ValueError(f"{path} holds IDX type 0x{type_code:02x}; only 0x08 (ubyte) is read")
    header_end = 4 + 4 * n_dims
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    expected = math.prod(shape)
    if len(raw) - header_end != expected:
        raise ValueError(
            f"{path}: header promises {expected} values of shape {shape}, "
            f"file holds {len(raw) - header_end}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {folder}. "
        f"Install the dataset with `{APT_HINT}`, or pass --data-dir FOLDER holding the IDX files."
    )


def load_fashion_mnist(folder: Path) -> tuple[Split, Split]:
    """Fashion-MNIST's 60,000 training and 10,000 test images, scaled to [0, 1]."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Fashion-MNIST folder {folder} does not exist. Install the dataset with "
            f"`{APT_HINT}`, or pass --data-dir FOLDER holding the IDX files."
        )
    splits = []
    for prefix in ("train", "t10k"):
        images = _read_idx(_find_idx(folder, f"{prefix}-images-idx3-ubyte"))
        labels = _read_idx(_find_idx(folder, f"{prefix}-labels-idx1-ubyte"))
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{prefix}: {images.shape[0]} images but {labels.shape[0]} labels in {folder}"
            )
        splits.append(
            Split(
                torch.from_numpy(images.astype(np.float32) / 255.0),
                torch.from_numpy(labels.astype(np.int64)),
            )
        )
    return splits[0], splits[1]


def load_digits_split(seed: int, n_test: int = 500) -> tuple[Split, Split]:
    """sklearn's 1,797 8x8 digits, split into train and a stratified test set of n_test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=n_test, random_state=seed, stratify=digits.target
    )
    return (
        Split(torch.from_numpy(x_train), torch.from_numpy(y_train.astype(np.int64))),
        Split(torch.from_numpy(x_test), torch.from_numpy(y_test.astype(np.int64))),
    )


def stratified_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices of a class-balanced random subset holding `fraction` of each class (at least 1)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for cls in torch.unique(labels):
        members = torch.nonzero(labels == cls).flatten()
        keep = max(1, round(fraction * len(members)))
        chosen.append(members[torch.randperm(len(members), generator=generator)[:keep]])
    return torch.sort(torch.cat(chosen)).values


def hold_out(train_set: Split, n: int) -> tuple[Split, Split]:
    """Split `n` class-balanced images off `train_set`: (the rest, the held-out ones).

    The draw is fixed (:data:`VALIDATION_SEED`), so every seed and run sees the same split.
    """
    total = len(train_set.labels)
    if not 0 < n < total:
        raise SystemExit(f"error: --validation {n} must lie between 1 and {total - 1}")
    held = stratified_subset(train_set.labels, n / total, VALIDATION_SEED)
    keep = torch.ones(total, dtype=torch.bool)
    keep[held] = False
    return (
        Split(train_set.images[keep], train_set.labels[keep]),
        Split(train_set.images[held], train_set.labels[held]),
    )


def jitter(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image (n, h, w) by its own random offset of up to max_shift pixels, zero fill."""
    if max_shift == 0:
        return images
    n, height, width = images.shape
    device = images.device
    padded = nn.functional.pad(images, (max_shift,) * 4)
    # The offsets come from the CPU generator, so a seed gives the same shifts on any device.
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(device)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(device)
    rows = (dy[:, None] + torch.arange(height, device=device))[:, :, None]
    cols = (dx[:, None] + torch.arange(width, device=device))[:, None, :]
    return padded[torch.arange(n, device=device)[:, None, None], rows, cols]
