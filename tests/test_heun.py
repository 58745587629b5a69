"""EDM's Heun sampler: σ ↔ t mapping, NFE counting, convergence on Gaussian data, agreement with diffusers."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import HeunDiscreteScheduler
from gaussian_data import MU, SHAPE, SIGMA, alphas_cumprod_at, errors, exact_eps
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genlab.diffusion.samplers import make_sampler
from genlab.diffusion.samplers.heun import HeunSampler, karras_sigmas
from genlab.diffusion.schedules import CosineSchedule, LinearSchedule
from genlab.errors import GenlabError

REPO = Path(__file__).resolve().parent.parent
LINEAR = LinearSchedule(1000)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("schedule", [LINEAR, CosineSchedule(100)], ids=["linear", "cosine"])
def test_sigma_of_fractional_timesteps_interpolates_log_sigma_and_inverts(schedule):
    table = schedule.alphas_cumprod.double()
    sigmas = ((1 - table) / table).sqrt()
    integers = torch.arange(schedule.timesteps, dtype=torch.float64)
    assert torch.allclose(schedule.sigma_at(integers), sigmas, rtol=1e-12)
    t = torch.rand(50, generator=gen(), dtype=torch.float64) * (schedule.timesteps - 1)
    reference = np.exp(np.interp(t.numpy(), integers.numpy(), sigmas.log().numpy()))
    assert np.allclose(schedule.sigma_at(t).numpy(), reference, rtol=1e-12)
    assert torch.allclose(schedule.timestep_at(schedule.sigma_at(t)), t, atol=1e-9)
    ends = schedule.timestep_at(torch.stack([sigmas[0], sigmas[-1], sigmas[0] / 2, sigmas[-1] * 2]))
    assert np.allclose(ends.numpy(), [0, schedule.timesteps - 1, 0, schedule.timesteps - 1], rtol=0, atol=1e-9)


def test_karras_sigmas_follow_edm_eq_5():
    sigmas = karras_sigmas(0.002, 80.0, 5)
    ramp = np.linspace(0, 1, 5)
    expected = (80 ** (1 / 7) + ramp * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert np.allclose(sigmas[:-1], expected, rtol=1e-12) and sigmas[-1] == 0
    assert karras_sigmas(0.1, 3.0, 1) == [3.0, 0.0]


@pytest.mark.parametrize(("steps", "nfe"), [(3, 3), (4, 3), (5, 5), (19, 19), (20, 19)])
def test_steps_is_the_nfe_budget_and_nfe_counts_network_calls(steps, nfe):
    times = []

    def eps_fn(x, t):
        assert t.is_floating_point()
        times.append(t[0].item())
        return torch.zeros_like(x)

    sampler = HeunSampler(steps=steps)
    sampler.sample(eps_fn, LINEAR, (2, *SHAPE), gen())
    assert sampler.nfe(1000) == nfe == len(times)
    assert times[0] == pytest.approx(999, abs=1e-9) and times[-1] == pytest.approx(0, abs=1e-9)
    assert times == sorted(times, reverse=True)


def test_output_converges_to_the_gaussian_data_as_nfe_grows():
    results = {nfe: errors(HeunSampler(steps=nfe, clip_x0=False), LINEAR) for nfe in (9, 17, 33, 65)}
    maps = [r["map"] for r in results.values()]
    covs = [r["cov"] for r in results.values()]
    # Second order: each doubling of NFE shrinks the distance to the exact ODE map by ≥ 3 (→ 4).
    assert all(b < a / 3 for a, b in pairwise(maps)), results
    assert all(b < a for a, b in pairwise(covs)), results
    # x_T ~ N(0, I) is not quite the marginal at T − 1 (√ᾱ ≈ 0.006): a mean floor of ≈ 1e-3.
    assert results[65]["map"] < 0.01 and results[65]["mean"] < 2e-3 and results[65]["cov"] < 0.01


def test_samples_of_the_seeded_sampler_have_the_data_mean_and_covariance():
    x = HeunSampler(steps=65, clip_x0=False).sample(exact_eps(LINEAR), LINEAR, (4000, *SHAPE), gen(0))
    flat = x.reshape(-1, 3).double()
    assert torch.allclose(flat.mean(0), MU, atol=0.02)
    assert torch.allclose(flat.T.cov(), SIGMA, atol=0.02)


def random_net(schedule):
    """A fixed nonlinear ε-net at fractional t: exact ε plus ᾱ(t)·tanh(W x + sin(t/100 + c))."""
    W = torch.randn(12, 12, generator=gen(3), dtype=torch.float64) * 0.5
    exact = exact_eps(schedule)

    def net(x, t):
        ab = alphas_cumprod_at(schedule, t).view(-1, 1)
        wobble = torch.tanh(x.reshape(-1, 12) @ W + torch.sin(t.double().view(-1, 1) / 100 + torch.arange(12) / 5))
        return exact(x.reshape(-1, 3, 1, 1), t.repeat_interleave(4)).reshape(x.shape) + (ab * wobble).view_as(x)

    return net


@pytest.mark.parametrize("steps", [9, 19, 39])
def test_agrees_with_diffusers_heun_discrete_with_karras_sigmas(steps):
    net = random_net(LINEAR)
    noise = torch.randn(3, 3, 2, 2, generator=gen(1), dtype=torch.float64)
    ours = HeunSampler(steps=steps, clip_x0=False).sample(net, LINEAR, noise.shape, x_start=noise)
    scheduler = HeunDiscreteScheduler(
        num_train_timesteps=1000, trained_betas=LINEAR.betas.numpy(), use_karras_sigmas=True
    )
    scheduler.alphas_cumprod = LINEAR.alphas_cumprod.clone()
    scheduler.set_timesteps((steps + 1) // 2)
    # diffusers starts from σ_max·n (VE); genlab's x_T = n is x̃ = √(1 + σ_max²)·n.
    x = noise * (1 + scheduler.sigmas[0].double() ** 2).sqrt()
    for t in scheduler.timesteps:
        x = scheduler.step(net(scheduler.scale_model_input(x, t), t.double().expand(len(x))), t, x).prev_sample
    # diffusers keeps σ and t in float32: agreement at float32 precision, relative to the sample's size
    # (evaluating at t rounded to integers instead moves the sample by ≈ 2e-3 of its size).
    assert (ours - x).abs().max().item() < 1e-5 * x.abs().max().item()


def test_a_later_start_scales_the_budget_and_labels_the_trajectory():
    sampler = HeunSampler(steps=20, clip_x0=False)
    assert sampler.nfe(1000, start_t=499) == 9 and sampler.nfe(1000, start_t=0) == 1
    times = []

    def eps_fn(x, t):
        times.append(t[0].item())
        return torch.zeros_like(x)

    x_start = torch.full((2, 1, 2, 2), 0.5)
    x, trajectory = sampler.sample(
        eps_fn, LINEAR, x_start.shape, gen(), x_start=x_start, start_t=499, return_trajectory=True
    )
    assert len(times) == 9 and times[0] == pytest.approx(499, abs=1e-9)
    labels = [t for t, _ in trajectory]
    assert labels[0] == 500 and labels[-1] == 0 and len(labels) == 6 and labels == sorted(labels, reverse=True)
    assert torch.equal(trajectory[0][1], x_start) and torch.equal(trajectory[-1][1], x)
    # ε̂ = 0 everywhere: x̃ = x_t/√ᾱ_t is constant along the ODE, so the sample is x_start/√ᾱ_499.
    assert torch.allclose(x, x_start / LINEAR.sqrt_alphas_cumprod[499])


def test_clipping_keeps_the_denoised_image_in_range():
    def wild(x, t):
        return -10 * torch.ones_like(x)

    clipped = HeunSampler(steps=7, clip_x0=True).sample(wild, LINEAR, (2, 1, 4, 4), gen())
    unclipped = HeunSampler(steps=7, clip_x0=False).sample(wild, LINEAR, (2, 1, 4, 4), gen())
    assert clipped.abs().max() <= 1 + 1e-5 < unclipped.abs().max()


def test_same_seed_gives_identical_samples():
    sampler = HeunSampler(steps=5)
    a = sampler.sample(exact_eps(LINEAR), LINEAR, (3, *SHAPE), gen(7))
    b = sampler.sample(exact_eps(LINEAR), LINEAR, (3, *SHAPE), gen(7))
    c = sampler.sample(exact_eps(LINEAR), LINEAR, (3, *SHAPE), gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("steps", [2, 1, 0, 3.0, True])
def test_steps_below_three_are_refused(steps):
    with pytest.raises(GenlabError, match=f"steps={steps}: the Heun sampler needs steps ≥ 3"):
        HeunSampler(steps=steps)


def test_registered_by_name_and_built_from_its_yaml():
    cfg = OmegaConf.load(REPO / "configs/model/sampler/heun.yaml")
    assert instantiate(cfg) == HeunSampler() == make_sampler("heun")
    assert HeunSampler().nfe(1000) == 19
    assert HeunSampler(steps=9).options() == {"sampler": "heun", "clip_x0": True, "steps": 9}
