"""Small torchvision.transforms.v2-style transforms that torchvision lacks.

They take float images in [0, 1] shaped (..., C, H, W) and draw fresh randomness per call.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchvision.transforms import v2

from genlab.errors import GenlabError


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise GenlabError(f"{name}={value} is out of range: a probability must lie in [0, 1].")


class SaltAndPepperNoise(v2.Transform):
    """Set a share ``amount`` of pixels to black (pepper) or white (salt), all channels alike.

    Args:
        amount: share of pixels replaced, in [0, 1].
        salt_ratio: share of the replaced pixels that become white, in [0, 1].
        p: probability of applying the transform to an image.
    """

    def __init__(self, amount: float = 0.05, salt_ratio: float = 0.5, p: float = 1.0) -> None:
        super().__init__()
        _check_probability("SaltAndPepperNoise.amount", amount)
        _check_probability("SaltAndPepperNoise.salt_ratio", salt_ratio)
        _check_probability("SaltAndPepperNoise.p", p)
        self.amount, self.salt_ratio, self.p = amount, salt_ratio, p

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, Tensor) or torch.rand(()) >= self.p:
            return inpt
        h, w = inpt.shape[-2:]
        hit = torch.rand(h, w, device=inpt.device) < self.amount
        salt = torch.rand(h, w, device=inpt.device) < self.salt_ratio
        out = inpt.clone()
        out[..., hit & salt] = 1.0
        out[..., hit & ~salt] = 0.0
        return out


class Cutout(v2.Transform):
    """Zero a random ``size``×``size`` square (DeVries & Taylor 2017), clipped at the borders.

    Args:
        size: side of the square in pixels (≥ 1).
        p: probability of applying the transform to an image.
        fill: value written into the square (0 = black in [0, 1] images).
    """

    def __init__(self, size: int = 8, p: float = 0.5, fill: float = 0.0) -> None:
        super().__init__()
        if size < 1:
            raise GenlabError(f"Cutout.size={size} must be at least 1 pixel.")
        _check_probability("Cutout.p", p)
        self.size, self.p, self.fill = size, p, fill

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, Tensor) or torch.rand(()) >= self.p:
            return inpt
        h, w = inpt.shape[-2:]
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        half = self.size // 2
        top, left = max(cy - half, 0), max(cx - half, 0)
        bottom, right = min(cy - half + self.size, h), min(cx - half + self.size, w)
        out = inpt.clone()
        out[..., top:bottom, left:right] = self.fill
        return out
