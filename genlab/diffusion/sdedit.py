"""SDEdit (Meng et al. 2022): noise an image to t0 = strength·T with q(x_t0 | x_0), then denoise it back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from genlab.diffusion.samplers.base import gaussian_noise
from genlab.diffusion.schedules import NoiseSchedule
from genlab.errors import GenlabError


def check_strength(strength: Any) -> float:
    """``strength`` as a float in [0, 1], or a GenlabError naming the option."""
    if isinstance(strength, bool) or not isinstance(strength, int | float) or not 0 <= strength <= 1:
        raise GenlabError(
            f"strength={strength} must be a number in [0, 1]: the share of the noise schedule an input is "
            "noised to before it is denoised back (0 = the input unchanged, 1 = a new sample from pure noise)."
        )
    return float(strength)


def strength_list(strength: Any) -> list[float]:
    """One strength or a list of them (``strength=[0.3,0.5,0.7]``), each checked."""
    values = list(strength) if isinstance(strength, Sequence) and not isinstance(strength, str) else [strength]
    if not values:
        raise GenlabError("strength=[] is empty: give a number in [0, 1] or a list of them.")
    return [check_strength(value) for value in values]


def start_step(strength: float, timesteps: int) -> int:
    """The timestep index t0 − 1 an edit of ``strength`` starts from (t0 = max(1, round(strength·T)))."""
    return max(1, round(strength * timesteps)) - 1


def noised(
    schedule: NoiseSchedule, images: Tensor, strength: float, generator: torch.Generator | None
) -> tuple[Tensor, int]:
    """(x_t0 ~ q(x_t0 | x_0 = images), its timestep index); pure noise at strength 1."""
    start_t = start_step(strength, schedule.timesteps)
    noise = gaussian_noise(images.shape, generator, images.device)
    if strength >= 1:
        return noise, start_t
    t = torch.full((len(images),), start_t, device=images.device, dtype=torch.long)
    return schedule.q_sample(images, t, noise), start_t
