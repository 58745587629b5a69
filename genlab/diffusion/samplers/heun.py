"""EDM's deterministic 2nd-order Heun sampler (Karras et al. 2022, Algorithm 1 with S_churn = 0) on genlab's
discrete schedule.

σ-parameterisation: σ(t) = √((1 − ᾱ_t)/ᾱ_t) and x̃ = x_t/√ᾱ_t = x_0 + σ ε, so the probability-flow ODE is
dx̃/dσ = (x̃ − D(x̃; σ))/σ = ε̂, with D = x̃ − σ ε̂ the denoiser. N Heun steps visit Karras' noise levels

    σ_i = (σ_max^{1/ρ} + i/(N − 1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ,  i = 0..N − 1,  σ_N = 0,  ρ = 7,

σ_max = σ(start_t) (σ(T − 1) from pure noise) and σ_min = σ(0); each step is an Euler step plus a trapezoidal
correction, except the last (to σ = 0), which is Euler: 2N − 1 network evaluations. ``steps`` is that budget:
N = (steps + 1) // 2, so an even budget spends steps − 1.

Timestep mapping: the network is evaluated at x_t = x̃/√(1 + σ²) (ᾱ = 1/(1 + σ²)) and the fractional timestep
t(σ) that inverts σ(t) with log σ linearly interpolated between the schedule's integer timesteps
(:meth:`NoiseSchedule.timestep_at`, as diffusers' ``_sigma_to_t``): σ_max and σ_min map to start_t and 0 exactly,
and other σ_i fall between integers (genlab's UNet embeds float timesteps sinusoidally). The trajectory labels
each state with its rounded timestep + 1 (0 for the sample).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from genlab.diffusion.samplers.base import EpsFn, Sampler, Trajectory
from genlab.diffusion.schedules import NoiseSchedule
from genlab.errors import GenlabError

RHO = 7.0


def karras_sigmas(sigma_min: float, sigma_max: float, n: int, rho: float = RHO) -> list[float]:
    """``n`` noise levels from σ_max down to σ_min, evenly spaced in σ^{1/ρ} (EDM eq. 5), then 0."""
    if n == 1:
        return [sigma_max, 0.0]
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    inner = [(hi + i / (n - 1) * (lo - hi)) ** rho for i in range(1, n - 1)]
    return [sigma_max, *inner, sigma_min, 0.0]


@dataclass(frozen=True)
class HeunSampler(Sampler):
    """EDM Heun (deterministic): ``steps`` network evaluations at most, 2N − 1 for N = (steps + 1) // 2 steps.

    Args:
        steps: network-evaluation budget over the whole schedule, at least 3; from a later start (SDEdit)
            scaled to the span as DDIM does (then possibly a single Euler step), with N ≤ start_t + 1.
        clip_x0: clip the denoised D(x̃; σ) to [−1, 1] at every evaluation.
    """

    name: ClassVar[str] = "heun"
    steps: int = 19

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 3:
            raise GenlabError(
                f"steps={self.steps}: the Heun sampler needs steps ≥ 3 network evaluations (an integer; N Heun "
                "steps cost 2N − 1 evaluations, and N ≥ 2 gives one Heun step plus the final Euler step)."
            )

    def heun_steps(self, timesteps: int, start_t: int) -> int:
        """N, the Heun steps from ``start_t``: (budget + 1) // 2 with the budget scaled to the span, at most
        start_t + 1 (so a start at t = 0, where σ_max = σ_min, takes one Euler step)."""
        budget = round(self.steps * (start_t + 1) / timesteps)
        return max(1, min((budget + 1) // 2, start_t + 1))

    def nfe(self, timesteps: int, start_t: int | None = None) -> int:
        return 2 * self.heun_steps(timesteps, timesteps - 1 if start_t is None else start_t) - 1

    def denoise_eps(self, eps_fn: EpsFn, x: Tensor, sigma: float, t: float) -> Tensor:
        """ε̂ = (x̃ − D(x̃; σ))/σ from the network at x_t = x̃/√(1 + σ²) and timestep t (D clipped with clip_x0)."""
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
        eps = eps_fn(x / (1 + sigma**2) ** 0.5, tt)
        if self.clip_x0:
            eps = (x - (x - sigma * eps).clamp(-1, 1)) / sigma
        return eps

    @torch.no_grad()
    def sample(
        self,
        eps_fn: EpsFn,
        schedule: NoiseSchedule,
        shape: Sequence[int],
        generator: torch.Generator | None = None,
        x_start: Tensor | None = None,
        start_t: int | None = None,
        return_trajectory: bool = False,
    ) -> Tensor | tuple[Tensor, Trajectory]:
        x_t, t_first = self.start(schedule, shape, generator, x_start, start_t)
        table = schedule.sigma_at(torch.tensor([0.0, t_first], dtype=torch.float64))
        sigmas = karras_sigmas(table[0].item(), table[1].item(), self.heun_steps(schedule.timesteps, t_first))
        times = schedule.timestep_at(torch.tensor(sigmas[:-1], dtype=torch.float64)).tolist()
        x = x_t * (1 + sigmas[0] ** 2) ** 0.5
        trajectory = [(t_first + 1, x_t.cpu())] if return_trajectory else []
        for i, (sigma, t) in enumerate(zip(sigmas[:-1], times, strict=True)):
            sigma_next = sigmas[i + 1]
            d = self.denoise_eps(eps_fn, x, sigma, t)
            x_next = x + (sigma_next - sigma) * d
            if sigma_next > 0:
                d_next = self.denoise_eps(eps_fn, x_next, sigma_next, times[i + 1])
                x_next = x + (sigma_next - sigma) * (d + d_next) / 2
            x = x_next
            if return_trajectory:
                label = round(times[i + 1]) + 1 if sigma_next > 0 else 0
                trajectory.append((label, (x / (1 + sigma_next**2) ** 0.5).cpu()))
        return (x, trajectory) if return_trajectory else x
