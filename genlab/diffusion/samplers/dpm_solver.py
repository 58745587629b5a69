"""DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic
Models", Algorithm 2): a multistep second-order solver of the diffusion ODE in data prediction (x_0) form.

On genlab's discrete schedule α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t), λ_t = log α_t − log σ_t. With x̂_0 evaluated at the
timesteps t_0 > t_1 > … > t_{N−1} and h_i = λ_{t_{i+1}} − λ_{t_i}, one step is

    x_{t_{i+1}} = (σ_{t_{i+1}}/σ_{t_i}) x_{t_i} − α_{t_{i+1}} (e^{−h_i} − 1) D_i,
    D_i = (1 + 1/(2 r_i)) x̂_0(t_i) − 1/(2 r_i) x̂_0(t_{i−1}),   r_i = h_{i−1}/h_i,

and D_i = x̂_0(t_i) (first order, = DDIM) on the first step, which has no history, and on the last step, which
goes to the clean image (σ = 0, λ = ∞, where the second-order term diverges): it returns x̂_0(t_{N−1}). This is
diffusers' ``DPMSolverMultistepScheduler`` with ``algorithm_type="dpmsolver++"``, ``solver_order=2``,
``solver_type="midpoint"``, ``final_sigmas_type="zero"`` (where ``lower_order_final`` changes nothing for order 2).
Guidance lives in ``eps_fn``; data prediction keeps the multistep solver stable under large guidance scales,
the paper's point.

Timesteps (``timestep_spacing="linspace"`` in diffusers): t_k = round(s·(N − k)/N) for k = 0..N − 1 from the
start timestep s (T − 1 from pure noise; round half to even), i.e. ``linspace(s, 0, N + 1).round()`` without
its final 0: the clean image takes the place of t = 0, so no evaluation is spent there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from genlab.diffusion.samplers.base import EpsFn, Sampler, Trajectory
from genlab.diffusion.schedules import NoiseSchedule
from genlab.errors import GenlabError


def dpm_solver_timesteps(start_t: int, steps: int) -> list[int]:
    """``steps`` timesteps round(k·start_t/steps), k = steps..1, computed as numpy's linspace does (so ties round
    alike); distinct and ≥ 1 when steps ≤ start_t."""
    step = start_t / steps
    return [round(k * step) for k in range(steps, 0, -1)]


@dataclass(frozen=True)
class DPMSolverSampler(Sampler):
    """DPM-Solver++(2M): ``steps`` network evaluations from pure noise, deterministic.

    Args:
        steps: network evaluations (NFE) over the whole schedule, at least 2 and at most T − 1; from a later
            start (SDEdit) scaled to the span as DDIM does (at least one, at most the start timestep).
        clip_x0: clip every x̂_0 to [−1, 1] (diffusers' thresholding with ``sample_max_value=1``).
    """

    name: ClassVar[str] = "dpm_solver"
    steps: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 2:
            raise GenlabError(
                f"steps={self.steps}: DPM-Solver++ 2M needs steps ≥ 2 (an integer number of network evaluations; "
                "its first and last steps are first order); use sampler=ddim for a single step."
            )

    @classmethod
    def max_steps(cls, timesteps: int) -> int:
        return timesteps - 1

    def check(self, timesteps: int) -> None:
        if self.steps > self.max_steps(timesteps):
            raise GenlabError(
                f"steps={self.steps} is out of range: the schedule has T={timesteps} timesteps, so DPM-Solver++ "
                f"steps must be an integer in 2..{timesteps - 1}."
            )

    def timesteps(self, timesteps: int, start_t: int) -> list[int]:
        """The timesteps evaluated from ``start_t`` (descending; the step after the last is the clean image)."""
        span_steps = max(1, min(round(self.steps * (start_t + 1) / timesteps), start_t))
        return dpm_solver_timesteps(start_t, span_steps)

    def nfe(self, timesteps: int, start_t: int | None = None) -> int:
        return len(self.timesteps(timesteps, timesteps - 1 if start_t is None else start_t))

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
        x, t_first = self.start(schedule, shape, generator, x_start, start_t)
        times = self.timesteps(schedule.timesteps, t_first)
        alphas_cumprod = schedule.alphas_cumprod.tolist()
        # Step coefficients as Python floats (float64), so x keeps its own dtype.
        alpha = [math.sqrt(alphas_cumprod[t]) for t in times]
        sigma = [math.sqrt(1 - alphas_cumprod[t]) for t in times]
        lam = [math.log(a / s) for a, s in zip(alpha, sigma, strict=True)]
        trajectory = [(t_first + 1, x.cpu())] if return_trajectory else []
        previous_x0 = None
        for i, t in enumerate(times):
            x0, _ = self.predict(eps_fn, schedule, x, t)
            if i == len(times) - 1:
                x = x0
            else:
                h = lam[i + 1] - lam[i]
                d = x0
                if previous_x0 is not None:
                    r = (lam[i] - lam[i - 1]) / h
                    d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * previous_x0
                x = (sigma[i + 1] / sigma[i]) * x - alpha[i + 1] * math.expm1(-h) * d
            previous_x0 = x0
            if return_trajectory:
                trajectory.append((times[i + 1] + 1 if i + 1 < len(times) else 0, x.cpu()))
        return (x, trajectory) if return_trajectory else x
