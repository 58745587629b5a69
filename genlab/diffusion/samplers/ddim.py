"""DDIM (Song et al. 2021) over a subsequence of the timesteps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from genlab.diffusion.samplers.base import EpsFn, StepSampler, check_int, gaussian_noise
from genlab.diffusion.schedules import NoiseSchedule
from genlab.errors import GenlabError


def ddim_timesteps(start_t: int, steps: int) -> list[int]:
    """``steps`` timesteps evenly spaced from ``start_t`` down to 0 (distinct, descending)."""
    if steps == 1:
        return [start_t]
    values = torch.linspace(start_t, 0, steps, dtype=torch.float64).round().long().tolist()
    return sorted(set(values), reverse=True)


@dataclass(frozen=True)
class DDIMSampler(StepSampler):
    """x_s = √ᾱ_s x̂_0 + √(1 − ᾱ_s − σ²) ε̂ + σ z, σ = η √((1 − ᾱ_s)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_s),
    where s is the next timestep of the subsequence (ᾱ = 1 after the last one).

    Args:
        steps: timesteps of the whole schedule's subsequence (= network evaluations from pure noise);
            from a later start (SDEdit), scaled to the span, at least one.
        eta: 0 is deterministic, 1 has DDPM-like noise.
        clip_x0: as :class:`Sampler`.
    """

    name: ClassVar[str] = "ddim"
    steps: int = 50
    eta: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("steps", self.steps, 1)
        if isinstance(self.eta, bool) or not isinstance(self.eta, int | float) or not self.eta >= 0:
            raise GenlabError(f"eta={self.eta} must be ≥ 0 (0 = deterministic DDIM, 1 = DDPM-like noise).")

    @classmethod
    def max_steps(cls, timesteps: int) -> int:
        return timesteps

    def check(self, timesteps: int) -> None:
        if self.steps > self.max_steps(timesteps):
            raise GenlabError(
                f"steps={self.steps} is out of range: the schedule has T={timesteps} timesteps, so steps must be "
                f"an integer in 1..{timesteps}."
            )

    def timesteps(self, timesteps: int, start_t: int) -> list[int]:
        span_steps = max(1, round(self.steps * (start_t + 1) / timesteps))
        return ddim_timesteps(start_t, min(span_steps, start_t + 1))

    def step(
        self, eps_fn: EpsFn, schedule: NoiseSchedule, x: Tensor, t: int, s: int, generator: torch.Generator | None
    ) -> Tensor:
        x0, eps = self.predict(eps_fn, schedule, x, t)
        alphas_cumprod = schedule.alphas_cumprod
        a_t = alphas_cumprod[t]
        a_s = alphas_cumprod[s] if s >= 0 else a_t.new_tensor(1.0)
        sigma = self.eta * ((1 - a_s) / (1 - a_t) * (1 - a_t / a_s)).clamp_min(0).sqrt()
        x = a_s.sqrt() * x0 + (1 - a_s - sigma**2).clamp_min(0).sqrt() * eps
        if self.eta > 0 and s >= 0:
            x = x + sigma * gaussian_noise(x.shape, generator, x.device)
        return x
