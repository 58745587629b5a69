"""Prediction types (eps, v, x0), their conversions and targets, and the min-SNR-γ weight."""

from __future__ import annotations

import pytest
import torch
from gaussian_data import SHAPE, exact_eps

from genlab.diffusion.prediction import (
    PREDICTIONS,
    alpha_sigma,
    eps_fn_for,
    min_snr_weight,
    snr,
    to_x0_eps,
    training_target,
)
from genlab.diffusion.samplers.ddim import DDIMSampler
from genlab.diffusion.samplers.ddpm import DDPMSampler
from genlab.diffusion.samplers.dpm_solver import DPMSolverSampler
from genlab.diffusion.samplers.heun import HeunSampler
from genlab.diffusion.schedules import CosineSchedule, LinearSchedule
from genlab.errors import GenlabError

LINEAR = LinearSchedule(1000)
T_INT = torch.tensor([0, 1, 250, 600, 999])
T_FLOAT = torch.tensor([0.0, 0.37, 250.5, 998.9, 999.0], dtype=torch.float64)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def x0_eps(n: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.randn(n, 2, 3, 3, generator=gen(1), dtype=torch.float64),
        torch.randn(n, 2, 3, 3, generator=gen(2), dtype=torch.float64),
    )


@pytest.mark.parametrize("t", [T_INT, T_FLOAT], ids=["integer-t", "fractional-t"])
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_every_target_converts_back_to_x0_and_eps(prediction, t):
    x0, eps = x0_eps()
    alpha, sigma = alpha_sigma(LINEAR, t, x0.ndim)
    assert torch.allclose(alpha**2 + sigma**2, torch.ones_like(alpha))
    x_t = alpha * x0 + sigma * eps
    x0_back, eps_back = to_x0_eps(training_target(prediction, x0, eps, t, LINEAR), x_t, t, LINEAR, prediction)
    assert torch.allclose(x0_back, x0, atol=1e-5) and torch.allclose(eps_back, eps, atol=1e-5)


def test_targets_are_the_papers_formulas_on_the_schedule_table():
    x0, eps = x0_eps()
    a = LINEAR.sqrt_alphas_cumprod[T_INT].double().view(-1, 1, 1, 1)
    s = LINEAR.sqrt_one_minus_alphas_cumprod[T_INT].double().view(-1, 1, 1, 1)
    assert torch.equal(training_target("eps", x0, eps, T_INT, LINEAR), eps)
    assert torch.equal(training_target("x0", x0, eps, T_INT, LINEAR), x0)
    assert torch.allclose(training_target("v", x0, eps, T_INT, LINEAR), a * eps - s * x0)
    # x_t from the schedule's own q_sample; ε → v → ε and x0 → v → x0 through x_t.
    x_t = LINEAR.q_sample(x0.float(), T_INT, eps.float()).double()
    v = a * eps - s * x0
    x0_from_v, eps_from_v = to_x0_eps(v, x_t, T_INT, LINEAR, "v")
    assert torch.allclose(eps_from_v, eps, atol=1e-4) and torch.allclose(x0_from_v, x0, atol=1e-4)
    assert torch.allclose(to_x0_eps(eps, x_t, T_INT, LINEAR, "eps")[0], LINEAR.predict_x0(x_t, T_INT, eps))


def test_fractional_timesteps_use_the_interpolated_sigma():
    alpha, sigma = alpha_sigma(LINEAR, T_FLOAT)
    edm_sigma = LINEAR.sigma_at(T_FLOAT)
    assert torch.allclose(sigma / alpha, edm_sigma)
    alpha_table = alpha_sigma(LINEAR, T_FLOAT.round().long())[0].double()
    assert torch.allclose(alpha[[0, 4]], alpha_table[[0, 4]]) and not torch.allclose(alpha, alpha_table)


def test_snr_is_alphas_cumprod_over_its_complement():
    ab = torch.cumprod(1 - torch.linspace(1e-4, 2e-2, 1000, dtype=torch.float64), 0)[T_INT]  # in float64
    assert torch.allclose(snr(LINEAR, T_INT).double(), ab / (1 - ab), rtol=1e-6)


@pytest.mark.parametrize("gamma", [5.0, 1.0, 20])
def test_min_snr_weights_are_the_papers_formulas(gamma):
    s = snr(LINEAR, T_INT).double()
    capped = torch.minimum(s, torch.full_like(s, float(gamma)))
    assert torch.allclose(min_snr_weight(s, "eps", gamma), capped / s)
    assert torch.allclose(min_snr_weight(s, "v", gamma), capped / (s + 1))
    assert torch.allclose(min_snr_weight(s, "x0", gamma), capped)
    # Below γ the ε-weight is 1 (plain MSE); at high SNR it falls as γ/SNR.
    assert min_snr_weight(s, "eps", gamma)[-1] == 1 and min_snr_weight(s, "eps", gamma)[0] < 1


def test_min_snr_weights_are_min_snr_gamma_in_x0_space_for_every_prediction_type():
    """Weighted MSE on any target = min(SNR, γ)·MSE on x0, for one and the same imperfect prediction."""
    x0, eps = x0_eps()
    alpha, sigma = alpha_sigma(LINEAR, T_INT, x0.ndim)
    x_t = alpha * x0 + sigma * eps
    x0_hat = x0 + 0.1 * torch.randn(x0.shape, generator=gen(3), dtype=torch.float64)
    eps_hat = (x_t - alpha * x0_hat) / sigma
    s = snr(LINEAR, T_INT).double()
    x0_mse = ((x0_hat - x0) ** 2).mean((1, 2, 3))
    for prediction in PREDICTIONS:
        output = training_target(prediction, x0_hat, eps_hat, T_INT, LINEAR)
        mse = ((output - training_target(prediction, x0, eps, T_INT, LINEAR)) ** 2).mean((1, 2, 3))
        weighted = min_snr_weight(s, prediction) * mse
        assert torch.allclose(weighted, s.clamp(max=5.0) * x0_mse, rtol=1e-4), prediction


@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize(
    "sampler",
    [DDPMSampler(clip_x0=False), DDIMSampler(steps=10, clip_x0=False), DPMSolverSampler(steps=8), HeunSampler(steps=9)],
    ids=["ddpm", "ddim", "dpm_solver", "heun"],
)
def test_every_sampler_accepts_every_prediction_type(sampler, prediction):
    """A network of each type that is exact for Gaussian data samples what the exact ε-predictor samples."""
    schedule = CosineSchedule(50)
    eps_exact = exact_eps(schedule)

    def net(x, t):
        eps = eps_exact(x, t)
        alpha, sigma = alpha_sigma(schedule, t, x.ndim)
        return training_target(prediction, (x - sigma * eps) / alpha, eps, t, schedule)

    wrapped = eps_fn_for(net, schedule, prediction)
    reference = sampler.sample(eps_exact, schedule, (6, *SHAPE), gen(5))
    assert torch.allclose(sampler.sample(wrapped, schedule, (6, *SHAPE), gen(5)), reference, atol=1e-4)
    if prediction == "eps":
        assert wrapped is net


@pytest.mark.parametrize(
    "call",
    [
        lambda: training_target("score", *x0_eps(), T_INT, LINEAR),
        lambda: to_x0_eps(torch.zeros(5, 1), torch.zeros(5, 1), T_INT, LINEAR, "score"),
        lambda: min_snr_weight(torch.ones(3), "score"),
        lambda: eps_fn_for(lambda x, t: x, LINEAR, "score"),
    ],
)
def test_an_unknown_prediction_type_is_refused_naming_the_option_and_choices(call):
    with pytest.raises(GenlabError, match=r"model.prediction=score is not a prediction type: choose one of eps, v, x0"):
        call()


@pytest.mark.parametrize("gamma", [0, -1.0, float("nan"), True, "5"])
def test_a_gamma_that_is_not_positive_is_refused(gamma):
    with pytest.raises(GenlabError, match=f"model.min_snr_gamma={gamma} must be a number > 0"):
        min_snr_weight(torch.ones(3), "eps", gamma)
