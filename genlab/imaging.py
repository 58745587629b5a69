"""Range conversions of image tensors and the writers of image files (grids, PNGs, npz).

genlab's images are float tensors in [-1, 1] (N, C, H, W) inside models; they are quantised to
uint8 (what a saved image holds) for files and for feature networks, through the functions here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.utils import make_grid, save_image

SAMPLE_FORMATS = ("grid", "png", "npz")


def to_unit_range(images: Tensor) -> Tensor:
    """[-1, 1] → [0, 1], clamped."""
    return images.add(1).div(2).clamp(0, 1)


def to_model_range(images01: Tensor) -> Tensor:
    """[0, 1] → [-1, 1]."""
    return images01.mul(2).sub_(1)


def to_uint8(images: Tensor) -> Tensor:
    """[-1, 1] float → uint8 in 0..255 (values outside [-1, 1] are clipped)."""
    return images.detach().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def uint8_to_model_range(images: Tensor) -> Tensor:
    """uint8 → float in [-1, 1], as genlab's datasets deliver images."""
    return images.float().div(127.5).sub_(1)


def square_nrow(n: int) -> int:
    """Images per row of a roughly square grid of ``n`` images."""
    return max(1, round(math.sqrt(n)))


def default_nrow(n: int, labels: Tensor | None, num_classes: int) -> int:
    """Images per grid row: one row per class when labels cycle through every class, else √n."""
    if labels is not None and num_classes and n % num_classes == 0 and len(labels.unique()) == num_classes:
        return n // num_classes
    return square_nrow(n)


def comparison_grid(columns: Sequence[Tensor], per_row: int = 1) -> Tensor:
    """A grid (C, H, W) in [0, 1] showing the i-th image of every column side by side, ``per_row``
    such groups a row. Images are in [-1, 1]; 1-channel images beside RGB ones are repeated to RGB."""
    channels = max(x.shape[1] for x in columns)
    parts = [to_unit_range(x.detach().float().cpu()).expand(-1, channels, -1, -1) for x in columns]
    interleaved = torch.stack(parts, dim=1).flatten(0, 1)
    return make_grid(interleaved, nrow=len(columns) * per_row, padding=2, pad_value=1.0)


def groups_per_row(n: int, group: int) -> int:
    """Groups of ``group`` images per row for a roughly square grid of ``n`` groups."""
    return max(1, round(math.sqrt(n / group)))


def save_grid(images: Tensor, path: Path, nrow: int | None = None) -> Path:
    """Save a batch in [-1, 1] as one grid PNG (``nrow`` images a row, default √n)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(to_unit_range(images.detach().float().cpu()), path, nrow=nrow or square_nrow(len(images)), padding=2)
    return path


def save_picture(picture01: Tensor, path: Path) -> Path:
    """Save one ready image (C, H, W) in [0, 1], e.g. a :func:`comparison_grid`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(picture01, path)
    return path


def save_pngs(images: Tensor, folder: Path, names: Sequence[str]) -> Path:
    """One PNG per image of a batch in [-1, 1], named ``names[i]`` (without suffix), in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, names, strict=True):
        save_image(to_unit_range(image.detach().float().cpu()), folder / f"{name}.png")
    return folder


def save_npz(path: Path, **arrays: Tensor | np.ndarray) -> Path:
    """A compressed npz; float image tensors (≥ 4 dims) in [-1, 1] are stored as uint8, others as they are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = {}
    for key, value in arrays.items():
        if isinstance(value, Tensor):
            value = to_uint8(value.cpu()) if value.is_floating_point() and value.ndim >= 4 else value.cpu()
            value = value.numpy()
        stored[key] = value
    np.savez_compressed(path, **stored)
    return path
