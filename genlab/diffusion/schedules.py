"""DDPM noise schedules (Ho et al. 2020; Nichol & Dhariwal 2021).

Terms are computed in float64 and stored as float32, non-persistent buffers (they are derived
from the config, so checkpoints need not carry them). Names follow the papers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from genlab.errors import GenlabError


def linear_betas(timesteps: int, beta_start: float, beta_end: float) -> Tensor:
    """β_t evenly spaced from ``beta_start`` to ``beta_end`` (float64)."""
    return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int, s: float, max_beta: float) -> Tensor:
    """β_t = 1 − ᾱ_t / ᾱ_{t−1} with ᾱ_t = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2), clipped."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    alphas_cumprod = f / f[0]
    return (1 - alphas_cumprod[1:] / alphas_cumprod[:-1]).clamp(max=max_beta)


def _extract(values: Tensor, t: Tensor, ndim: int) -> Tensor:
    """values[t] shaped (N, 1, 1, ...) to broadcast over an ``ndim``-dimensional batch."""
    return values.gather(0, t).reshape(-1, *([1] * (ndim - 1)))


def _check_timesteps(timesteps: int) -> None:
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or timesteps < 1:
        raise GenlabError(f"schedule.timesteps={timesteps} must be an integer ≥ 1.")


class NoiseSchedule(nn.Module):
    """A schedule built from its betas; holds every derived term as a buffer.

    Buffers: ``betas``, ``alphas``, ``alphas_cumprod``, ``alphas_cumprod_prev``,
    ``sqrt_alphas_cumprod``, ``sqrt_one_minus_alphas_cumprod``, ``posterior_variance``,
    ``posterior_log_variance_clipped``, ``posterior_mean_coef1``, ``posterior_mean_coef2``.
    """

    def __init__(self, betas: Tensor, params: str = "") -> None:
        super().__init__()
        if betas.ndim != 1 or len(betas) < 1:
            raise GenlabError("a noise schedule needs at least one timestep.")
        stored = betas.float()
        if not bool(((betas > 0) & (betas < 1) & (stored > 0) & (stored < 1)).all()):
            raise GenlabError(
                f"schedule parameters {params or ''}give betas outside (0, 1) (min {betas.min().item():.3g}, "
                f"max {betas.max().item():.3g}): every beta must satisfy 0 < beta < 1."
            )
        alphas = 1 - betas
        alphas_cumprod = torch.cumprod(alphas, 0)
        alphas_cumprod_prev = torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod[:-1]])
        posterior_variance = betas * (1 - alphas_cumprod_prev) / (1 - alphas_cumprod)
        terms = {
            "betas": betas,
            "alphas": alphas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": alphas_cumprod_prev,
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1 - alphas_cumprod).sqrt(),
            "posterior_variance": posterior_variance,
            # Clipped at t=0, where the posterior variance is 0.
            "posterior_log_variance_clipped": torch.log(
                torch.cat([posterior_variance[1:2], posterior_variance[1:]]) if len(betas) > 1 else betas
            ),
            "posterior_mean_coef1": betas * alphas_cumprod_prev.sqrt() / (1 - alphas_cumprod),
            "posterior_mean_coef2": (1 - alphas_cumprod_prev) * alphas.sqrt() / (1 - alphas_cumprod),
        }
        for name, value in terms.items():
            self.register_buffer(name, value.float(), persistent=False)

    @property
    def timesteps(self) -> int:
        """T, the number of diffusion steps."""
        return len(self.betas)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Sample x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)."""
        return (
            _extract(self.sqrt_alphas_cumprod, t, x0.ndim) * x0
            + _extract(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim) * noise
        )

    def predict_x0(self, x_t: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """x_0 implied by a noise prediction: (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t."""
        return (x_t - _extract(self.sqrt_one_minus_alphas_cumprod, t, x_t.ndim) * eps) / _extract(
            self.sqrt_alphas_cumprod, t, x_t.ndim
        )

    def predict_eps(self, x_t: Tensor, t: Tensor, x0: Tensor) -> Tensor:
        """ε implied by an x_0 prediction: (x_t − √ᾱ_t x_0) / √(1 − ᾱ_t)."""
        return (x_t - _extract(self.sqrt_alphas_cumprod, t, x_t.ndim) * x0) / _extract(
            self.sqrt_one_minus_alphas_cumprod, t, x_t.ndim
        )

    def q_posterior(self, x0: Tensor, x_t: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance of q(x_{t−1} | x_t, x_0)."""
        mean = (
            _extract(self.posterior_mean_coef1, t, x_t.ndim) * x0
            + _extract(self.posterior_mean_coef2, t, x_t.ndim) * x_t
        )
        return mean, _extract(self.posterior_variance, t, x_t.ndim)

    def log_sigmas(self, like: Tensor) -> Tensor:
        """log σ_t of EDM's σ_t = √((1 − ᾱ_t)/ᾱ_t) for t = 0..T − 1 (increasing), in ``like``'s dtype and device."""
        alphas_cumprod = self.alphas_cumprod.to(like.device).to(like.dtype)
        return 0.5 * (torch.log1p(-alphas_cumprod) - torch.log(alphas_cumprod))

    def sigma_at(self, t: Tensor) -> Tensor:
        """σ(t) at (possibly fractional) timesteps ``t``: the table at integers, log σ linear in between."""
        t = t if t.is_floating_point() else t.double()
        log_sigmas = self.log_sigmas(t)
        low = t.clamp(0, self.timesteps - 1).floor().long().clamp(max=max(self.timesteps - 2, 0))
        high = (low + 1).clamp(max=self.timesteps - 1)
        w = t.clamp(0, self.timesteps - 1) - low
        return ((1 - w) * log_sigmas[low] + w * log_sigmas[high]).exp()

    def timestep_at(self, sigma: Tensor) -> Tensor:
        """The inverse of :meth:`sigma_at`: the fractional timestep of noise level σ, clamped to [0, T − 1]."""
        log_sigmas = self.log_sigmas(sigma)
        if self.timesteps == 1:
            return torch.zeros_like(sigma)
        log_sigma = sigma.log().clamp(log_sigmas[0], log_sigmas[-1])
        high = torch.searchsorted(log_sigmas, log_sigma).clamp(1, self.timesteps - 1)
        low_value, high_value = log_sigmas[high - 1], log_sigmas[high]
        w = (log_sigma - low_value) / (high_value - low_value).clamp_min(torch.finfo(sigma.dtype).tiny)
        return high - 1 + w


class LinearSchedule(NoiseSchedule):
    """β_t linear from ``beta_start`` to ``beta_end`` over ``timesteps`` steps (Ho et al. 2020)."""

    def __init__(self, timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 2e-2) -> None:
        _check_timesteps(timesteps)
        params = f"(schedule.beta_start={beta_start}, schedule.beta_end={beta_end}) "
        super().__init__(linear_betas(timesteps, beta_start, beta_end), params)


class CosineSchedule(NoiseSchedule):
    """Cosine ᾱ_t (Nichol & Dhariwal 2021) with offset ``s``; β clipped at ``max_beta``."""

    def __init__(self, timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> None:
        _check_timesteps(timesteps)
        if not s > 0:
            raise GenlabError(f"schedule.s={s} must be > 0 (the cosine schedule's offset, 0.008 in the paper).")
        params = f"(schedule.s={s}, schedule.max_beta={max_beta}) "
        super().__init__(cosine_betas(timesteps, s, max_beta), params)
