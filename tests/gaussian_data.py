"""Gaussian data N(MU, SIGMA) in 3 dimensions (correlated, non-zero mean), where everything is known in closed form.

With α² = ᾱ_t, σ² = 1 − ᾱ_t and C_t = α² SIGMA + σ² I, the optimal noise predictor is
E[ε | x_t] = σ C_t⁻¹ (x_t − α MU), and the probability-flow ODE maps x_T at timestep T − 1 to
x_0 = MU + SIGMA^{1/2} C_T^{-1/2} (x_T − α_T MU). Deterministic samplers with the exact ε are then affine maps
x_0 = A x_T + b: four probes give A and b, so output mean b and covariance A Aᵀ (for x_T ~ N(0, I)) are exact,
free of Monte-Carlo noise. Images are shaped (N, 3, 1, 1).
"""

from __future__ import annotations

import numpy as np
import torch

MU = torch.tensor([0.5, -0.3, 0.2], dtype=torch.float64)
_L = torch.tensor([[0.4, 0.0, 0.0], [0.2, 0.3, 0.0], [-0.1, 0.1, 0.2]], dtype=torch.float64)
SIGMA = _L @ _L.T
SHAPE = (3, 1, 1)


def alphas_cumprod_at(schedule, t: torch.Tensor) -> torch.Tensor:
    """ᾱ at integer timesteps (the table) or fractional ones (log σ interpolated with numpy, ᾱ = 1/(1 + σ²))."""
    table = schedule.alphas_cumprod.double()
    if not t.is_floating_point():
        return table[t.cpu()]
    log_sigmas = 0.5 * np.log((1 - table.numpy()) / table.numpy())
    sigma = np.exp(np.interp(t.double().cpu().numpy(), np.arange(len(table)), log_sigmas))
    return torch.from_numpy(1 / (1 + sigma**2))


def exact_eps(schedule):
    """The optimal ε-predictor of the data, at integer or fractional timesteps."""

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = alphas_cumprod_at(schedule, t).view(-1, 1, 1)
        cov = ab * SIGMA + (1 - ab) * torch.eye(3, dtype=torch.float64)
        centred = x.reshape(-1, 3, 1).double() - ab.sqrt() * MU.view(3, 1)
        return ((1 - ab).sqrt() * torch.linalg.solve(cov, centred)).reshape(x.shape).to(x.dtype)

    return eps_fn


def _sqrtm(matrix: torch.Tensor, power: float) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values**power) @ vectors.T


def exact_map(schedule) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, b) of the exact probability-flow ODE from timestep T − 1 to the data."""
    ab = schedule.alphas_cumprod.double()[-1]
    cov_T = ab * SIGMA + (1 - ab) * torch.eye(3, dtype=torch.float64)
    A = _sqrtm(SIGMA, 0.5) @ _sqrtm(cov_T, -0.5)
    return A, MU - A @ (ab.sqrt() * MU)


def sampler_map(sampler, schedule) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, b) of a deterministic sampler run with the exact ε from pure noise (x_T probes 0, e_1, e_2, e_3)."""
    probes = torch.cat([torch.zeros(1, 3), torch.eye(3)]).double().reshape(4, *SHAPE)
    out = sampler.sample(exact_eps(schedule), schedule, probes.shape, x_start=probes).reshape(4, 3)
    return (out[1:] - out[0]).T, out[0]


def errors(sampler, schedule) -> dict[str, float]:
    """Distance of the sampler's map to the exact ODE map, and of its output mean and covariance to the data's."""
    A, b = sampler_map(sampler, schedule)
    A_exact, b_exact = exact_map(schedule)
    return {
        "map": max((A - A_exact).abs().max().item(), (b - b_exact).abs().max().item()),
        "mean": (b - MU).abs().max().item(),
        "cov": (A @ A.T - SIGMA).abs().max().item(),
    }
