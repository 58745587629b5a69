"""Range checks of augmentation strengths: a rotation of 400° or a jitter of 3 is refused by name.

torchvision checks some arguments itself (flip probabilities) and accepts others that make no sense
for an augmentation study; :func:`check_ranges` refuses those, naming ``augment.transforms.<i>.<key>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torchvision.transforms import v2

from genlab.errors import GenlabError


def _refuse(index: int, key: str, value: Any, rule: str) -> None:
    raise GenlabError(f"augment.transforms.{index}.{key}={value} is out of range: {rule}.")


def _symmetric(values: Sequence[float] | None) -> float | None:
    return None if values is None else max(abs(float(v)) for v in values)


def check_ranges(transforms: Sequence[Any]) -> None:
    """Refuse out-of-range strengths of the torchvision transforms in an augment pipeline."""
    for i, transform in enumerate(transforms):
        if isinstance(transform, v2.RandomRotation | v2.RandomAffine):
            degrees = _symmetric(transform.degrees)
            if degrees is not None and degrees > 180:
                _refuse(i, "degrees", degrees, "a rotation is at most 180 degrees either way")
        if isinstance(transform, v2.RandomAffine):
            if transform.translate is not None and not all(0 <= t <= 1 for t in transform.translate):
                _refuse(i, "translate", list(transform.translate), "shifts are shares of the image side, in [0, 1]")
            if transform.scale is not None and not 0 < transform.scale[0] <= transform.scale[1] <= 4:
                _refuse(i, "scale", list(transform.scale), "give [low, high] with 0 < low <= high <= 4")
        if isinstance(transform, v2.ColorJitter):
            for key in ("brightness", "contrast", "saturation"):
                span = getattr(transform, key)
                if span is not None and span[1] > 2:
                    _refuse(i, key, round(span[1] - 1, 6), "a jitter strength lies in [0, 1]")
        padding = getattr(transform, "padding", None) if isinstance(transform, v2.RandomCrop) else None
        if padding is not None and min(padding) < 0:
            _refuse(i, "padding", padding, "padding is a number of pixels >= 0")
        if isinstance(transform, v2.GaussianNoise) and not 0 <= transform.sigma <= 1:
            _refuse(i, "sigma", transform.sigma, "the noise σ of images in [0, 1] lies in [0, 1]")
