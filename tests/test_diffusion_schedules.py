"""Noise schedules against their closed forms, and the forward process q(x_t | x_0)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from genlab.diffusion.schedules import CosineSchedule, LinearSchedule, NoiseSchedule
from genlab.errors import GenlabError

SCHEDULES = {
    "linear": lambda T=1000: LinearSchedule(T),
    "cosine": lambda T=1000: CosineSchedule(T),
    "cosine_course": lambda T=1000: CosineSchedule(T, max_beta=0.02),
}


def test_linear_betas_and_alphas_cumprod_match_the_closed_form():
    schedule = LinearSchedule(1000, 1e-4, 2e-2)
    betas = torch.linspace(1e-4, 2e-2, 1000, dtype=torch.float64)
    torch.testing.assert_close(schedule.betas.double(), betas, rtol=1e-6, atol=0)
    torch.testing.assert_close(schedule.alphas.double(), 1 - betas, rtol=1e-6, atol=0)
    torch.testing.assert_close(schedule.alphas_cumprod.double(), torch.cumprod(1 - betas, 0), rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(schedule.alphas_cumprod[:5].double(), torch.cumprod(1 - betas[:5], 0))
    assert schedule.alphas_cumprod_prev[0] == 1.0
    torch.testing.assert_close(schedule.alphas_cumprod_prev[1:], schedule.alphas_cumprod[:-1])


def test_cosine_alphas_cumprod_is_f_t_over_f_0_where_unclipped():
    T, s = 1000, 0.008
    schedule = CosineSchedule(T, s=s, max_beta=0.999)

    def f(t: int) -> float:
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    expected = torch.tensor([f(t) / f(0) for t in range(1, T + 1)], dtype=torch.float64)
    unclipped = schedule.betas < 0.999
    assert unclipped.sum() >= T - 2  # only the last β hits the clip at 0.999
    first_clipped = int((~unclipped).nonzero()[0]) if (~unclipped).any() else T
    torch.testing.assert_close(
        schedule.alphas_cumprod[:first_clipped].double(), expected[:first_clipped], rtol=1e-4, atol=1e-7
    )
    torch.testing.assert_close(schedule.alphas_cumprod.double(), torch.cumprod(1 - schedule.betas.double(), 0))


def test_cosine_course_variant_clips_betas_at_0_02():
    schedule = CosineSchedule(1000, max_beta=0.02)
    assert schedule.betas.max().item() == pytest.approx(0.02)
    assert (schedule.betas <= 0.02 + 1e-7).all()


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_are_monotone_and_end_near_zero(name):
    schedule = SCHEDULES[name]()
    assert ((schedule.betas > 0) & (schedule.betas < 1)).all()
    assert (schedule.alphas_cumprod[1:] < schedule.alphas_cumprod[:-1]).all()
    assert (schedule.betas[1:] >= schedule.betas[:-1] - 1e-7).all()
    limit = 0.01 if name == "cosine_course" else 1e-3  # β ≤ 0.02 keeps a little signal at T
    assert schedule.alphas_cumprod[-1] < limit
    assert schedule.alphas_cumprod[0] > 0.99


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_buffers_are_float32_and_not_saved_in_checkpoints(name):
    schedule = SCHEDULES[name](50)
    assert schedule.state_dict() == {}
    for buffer in schedule.buffers():
        assert buffer.dtype == torch.float32
    assert schedule.timesteps == 50


def test_posterior_terms_match_bayes_rule():
    schedule = LinearSchedule(100)
    ab_prev = schedule.alphas_cumprod_prev.double()
    beta, alpha = schedule.betas.double(), schedule.alphas.double()
    # q(x_{t-1}|x_0) = N(√ᾱ_{t-1} x0, 1-ᾱ_{t-1}); q(x_t|x_{t-1}) = N(√α_t x_{t-1}, β_t): multiply the Gaussians.
    t = torch.arange(1, 100)
    precision = 1 / (1 - ab_prev[t]) + alpha[t] / beta[t]
    torch.testing.assert_close(schedule.posterior_variance[t].double(), 1 / precision, rtol=1e-3, atol=1e-9)
    torch.testing.assert_close(
        schedule.posterior_mean_coef1[t].double(), ab_prev[t].sqrt() / (1 - ab_prev[t]) / precision, rtol=1e-3, atol=0
    )
    torch.testing.assert_close(
        schedule.posterior_mean_coef2[t].double(), alpha[t].sqrt() / beta[t] / precision, rtol=1e-3, atol=0
    )
    assert schedule.posterior_variance[0] == 0
    torch.testing.assert_close(schedule.posterior_log_variance_clipped[1:], schedule.posterior_variance[1:].log())
    x0, xt = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    tt = torch.tensor([1, 50, 99])
    mean, var = schedule.q_posterior(x0, xt, tt)
    c1, c2 = schedule.posterior_mean_coef1[tt], schedule.posterior_mean_coef2[tt]
    torch.testing.assert_close(mean, c1.view(-1, 1, 1, 1) * x0 + c2.view(-1, 1, 1, 1) * xt)
    assert var.shape == (3, 1, 1, 1)


@pytest.mark.parametrize(
    ("factory", "needle"),
    [
        (lambda: LinearSchedule(1000, 1e-4, 1.5), "schedule.beta_end=1.5"),
        (lambda: LinearSchedule(1000, 0.0, 0.02), "schedule.beta_start=0.0"),
        (lambda: LinearSchedule(1000, -0.1, 0.02), "outside (0, 1)"),
        (lambda: CosineSchedule(1000, max_beta=1.0), "schedule.max_beta=1.0"),
        (lambda: LinearSchedule(0), "schedule.timesteps=0"),
        (lambda: NoiseSchedule(torch.tensor([0.5, 1.0], dtype=torch.float64)), "outside (0, 1)"),
    ],
)
def test_betas_outside_0_1_are_refused_with_a_clear_message(factory, needle):
    with pytest.raises(GenlabError, match="") as info:
        factory()
    assert needle in str(info.value)


def test_q_sample_has_the_closed_form_mean_and_variance():
    schedule = LinearSchedule(1000)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.full((20000, 1, 1, 1), 0.7)
    for t in (0, 250, 999):
        tt = torch.full((len(x0),), t)
        xt = schedule.q_sample(x0, tt, torch.randn(x0.shape, generator=generator))
        ab = schedule.alphas_cumprod[t].item()
        assert xt.mean().item() == pytest.approx(math.sqrt(ab) * 0.7, abs=0.03)
        assert xt.var().item() == pytest.approx(1 - ab, rel=0.05, abs=2e-4)


def test_q_sample_inverts_through_predict_x0():
    schedule = CosineSchedule(100)
    x0, noise = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    t = torch.tensor([0, 10, 50, 90])
    torch.testing.assert_close(schedule.predict_x0(schedule.q_sample(x0, t, noise), t, noise), x0, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_iterating_one_step_kernels_matches_the_closed_form_in_distribution(name):
    schedule = SCHEDULES[name](1000)
    generator = torch.Generator().manual_seed(1)
    x0 = torch.full((20000,), -0.4)
    t = 300
    x = x0.clone()
    for s in range(t + 1):  # x_{s+1} = √α_s x_s + √β_s ε
        x = schedule.alphas[s].sqrt() * x + schedule.betas[s].sqrt() * torch.randn(x.shape, generator=generator)
    closed = schedule.q_sample(x0, torch.full((len(x0),), t), torch.randn(x0.shape, generator=generator))
    ab = schedule.alphas_cumprod[t].item()
    assert x.mean().item() == pytest.approx(math.sqrt(ab) * -0.4, abs=0.02)
    assert x.var().item() == pytest.approx(1 - ab, rel=0.04)
    assert stats.ks_2samp(x.numpy(), closed.numpy()).pvalue > 0.01
    exact = stats.norm(loc=math.sqrt(ab) * -0.4, scale=math.sqrt(1 - ab))
    assert stats.kstest(x.numpy(), exact.cdf).pvalue > 0.01
