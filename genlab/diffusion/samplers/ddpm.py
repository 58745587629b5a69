"""Ancestral sampling over all T steps (Ho et al. 2020)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from genlab.diffusion.samplers.base import EpsFn, StepSampler, batch_t, gaussian_noise
from genlab.diffusion.schedules import NoiseSchedule
from genlab.errors import GenlabError

VARIANCES = ("beta", "posterior")


@dataclass(frozen=True)
class DDPMSampler(StepSampler):
    """x_{t−1} = μ_θ(x_t, t) + σ_t z, from ``start_t`` down to 0; T network evaluations from noise.

    μ_θ is the posterior mean q(x_{t−1} | x_t, x̂_0) with x̂_0 predicted from ε_θ (clipped to [−1, 1]
    with ``clip_x0``; unclipped this is the paper's 1/√α_t (x_t − β_t/√(1−ᾱ_t) ε_θ)). No noise is
    added at t = 0.

    Args:
        variance: σ_t²: ``beta`` (β_t, the course's choice) or ``posterior`` (β̃_t).
        clip_x0: as :class:`Sampler`.
    """

    name: ClassVar[str] = "ddpm"
    variance: str = "beta"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.variance not in VARIANCES:
            raise GenlabError(f"variance={self.variance} is not one of {', '.join(VARIANCES)}.")

    def timesteps(self, timesteps: int, start_t: int) -> list[int]:
        return list(range(start_t, -1, -1))

    def step(
        self, eps_fn: EpsFn, schedule: NoiseSchedule, x: Tensor, t: int, s: int, generator: torch.Generator | None
    ) -> Tensor:
        x0, _ = self.predict(eps_fn, schedule, x, t)
        mean, _ = schedule.q_posterior(x0, x, batch_t(t, x))
        if t == 0:
            return mean
        sigma2 = schedule.betas if self.variance == "beta" else schedule.posterior_variance
        return mean + sigma2[t].sqrt() * gaussian_noise(x.shape, generator, x.device)
