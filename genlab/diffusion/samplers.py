"""Reverse-process samplers: stateless functions of a noise predictor and a schedule.

``eps_fn(x_t, t)`` is any callable returning ε_θ(x_t, t) (the model adds labels and guidance).
Every sampler draws its noise from an explicit ``torch.Generator``, so a seed gives identical
samples; each can start from a given ``x_start`` at timestep ``start_t`` (image-to-image,
reconstructions) and can return the trajectory of intermediate x_t.

- :func:`ddpm_sample`: ancestral sampling over all T steps (Ho et al. 2020), with σ_t² = β_t
  (the course's choice) or the posterior variance β̃_t.
- :func:`ddim_sample`: DDIM (Song et al. 2021) over a subsequence of ``steps`` timesteps;
  ``eta`` = 0 is deterministic, ``eta`` = 1 has DDPM-like noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from genlab.diffusion.schedules import NoiseSchedule
from genlab.errors import GenlabError

EpsFn = Callable[[Tensor, Tensor], Tensor]
VARIANCES = ("beta", "posterior")


def gaussian_noise(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal noise drawn on the generator's device, moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(*shape, generator=generator, device=gen_device).to(device)


def _start(
    schedule: NoiseSchedule,
    shape: Sequence[int],
    generator: torch.Generator | None,
    x_start: Tensor | None,
    start_t: int | None,
) -> tuple[Tensor, int]:
    """The first x_t and its timestep: pure noise at T − 1 unless ``x_start`` is given."""
    T = schedule.timesteps
    t = T - 1 if start_t is None else int(start_t)
    if not 0 <= t < T:
        raise GenlabError(f"start_t={t} is outside the schedule's timesteps 0..{T - 1}.")
    device = schedule.betas.device
    x = gaussian_noise(shape, generator, device) if x_start is None else x_start.to(device)
    return x, t


def _batch_t(t: int, x: Tensor) -> Tensor:
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)


def check_sampler_options(timesteps: int, steps: int | None = None, eta: float | None = None) -> None:
    """Refuse ``steps`` outside 1..T and negative ``eta`` with a message naming the option."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= timesteps):
        raise GenlabError(
            f"steps={steps} is out of range: the schedule has T={timesteps} timesteps, so steps must be "
            f"an integer in 1..{timesteps}."
        )
    if eta is not None and not eta >= 0:
        raise GenlabError(f"eta={eta} must be ≥ 0 (0 = deterministic DDIM, 1 = DDPM-like noise).")


@torch.no_grad()
def ddpm_sample(
    eps_fn: EpsFn,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    variance: str = "beta",
    clip_x0: bool = True,
    x_start: Tensor | None = None,
    start_t: int | None = None,
    return_trajectory: bool = False,
) -> Tensor | tuple[Tensor, list[tuple[int, Tensor]]]:
    """Ancestral sampling x_{t−1} = μ_θ(x_t, t) + σ_t z from ``start_t`` (default T − 1) down to 0.

    μ_θ is the posterior mean q(x_{t−1} | x_t, x̂_0) with x̂_0 predicted from ε_θ (clipped to
    [−1, 1] when ``clip_x0``; unclipped this is the paper's 1/√α_t (x_t − β_t/√(1−ᾱ_t) ε_θ)).
    ``variance``: ``beta`` (σ_t² = β_t) or ``posterior`` (σ_t² = β̃_t). No noise is added at t = 0.
    With ``return_trajectory`` also returns the list [(t, x_t)] (on the CPU) in the papers' 1-based
    time: from ``start_t + 1`` (T for pure noise) down to 0 (the sample).
    """
    if variance not in VARIANCES:
        raise GenlabError(f"variance={variance} is not one of {', '.join(VARIANCES)}.")
    x, t_first = _start(schedule, shape, generator, x_start, start_t)
    sigma2 = schedule.betas if variance == "beta" else schedule.posterior_variance
    trajectory = [(t_first + 1, x.cpu())] if return_trajectory else []
    for t in range(t_first, -1, -1):
        tt = _batch_t(t, x)
        x0 = schedule.predict_x0(x, tt, eps_fn(x, tt))
        if clip_x0:
            x0 = x0.clamp(-1, 1)
        mean, _ = schedule.q_posterior(x0, x, tt)
        x = mean + sigma2[t].sqrt() * gaussian_noise(x.shape, generator, x.device) if t > 0 else mean
        if return_trajectory:
            trajectory.append((t, x.cpu()))
    return (x, trajectory) if return_trajectory else x


def ddim_timesteps(start_t: int, steps: int) -> list[int]:
    """``steps`` timesteps evenly spaced from ``start_t`` down to 0 (distinct, descending)."""
    if steps == 1:
        return [start_t]
    values = torch.linspace(start_t, 0, steps, dtype=torch.float64).round().long().tolist()
    return sorted(set(values), reverse=True)


@torch.no_grad()
def ddim_sample(
    eps_fn: EpsFn,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    steps: int = 50,
    eta: float = 0.0,
    clip_x0: bool = True,
    x_start: Tensor | None = None,
    start_t: int | None = None,
    return_trajectory: bool = False,
) -> Tensor | tuple[Tensor, list[tuple[int, Tensor]]]:
    """DDIM over ``steps`` timesteps from ``start_t`` (default T − 1) to 0.

    x_{s} = √ᾱ_s x̂_0 + √(1 − ᾱ_s − σ²) ε̂ + σ z, σ = η √((1 − ᾱ_s)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_s),
    where s is the next timestep of the subsequence (ᾱ = 1 after the last one). The trajectory is
    as in :func:`ddpm_sample`, with one entry per step.
    """
    x, t_first = _start(schedule, shape, generator, x_start, start_t)
    check_sampler_options(t_first + 1, steps, eta)
    times = ddim_timesteps(t_first, steps)
    alphas_cumprod = schedule.alphas_cumprod
    trajectory = [(t_first + 1, x.cpu())] if return_trajectory else []
    for i, t in enumerate(times):
        s = times[i + 1] if i + 1 < len(times) else -1
        tt = _batch_t(t, x)
        eps = eps_fn(x, tt)
        x0 = schedule.predict_x0(x, tt, eps)
        if clip_x0:
            x0 = x0.clamp(-1, 1)
            eps = (x - alphas_cumprod[t].sqrt() * x0) / (1 - alphas_cumprod[t]).sqrt()
        a_t = alphas_cumprod[t]
        a_s = alphas_cumprod[s] if s >= 0 else a_t.new_tensor(1.0)
        sigma = eta * ((1 - a_s) / (1 - a_t) * (1 - a_t / a_s)).clamp_min(0).sqrt()
        x = a_s.sqrt() * x0 + (1 - a_s - sigma**2).clamp_min(0).sqrt() * eps
        if eta > 0 and s >= 0:
            x = x + sigma * gaussian_noise(x.shape, generator, x.device)
        if return_trajectory:
            trajectory.append((s + 1, x.cpu()))
    return (x, trajectory) if return_trajectory else x
