"""DPM-Solver++(2M): convergence on Gaussian data and agreement with diffusers' DPMSolverMultistepScheduler."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
import torch
from diffusers import DPMSolverMultistepScheduler
from gaussian_data import MU, SHAPE, SIGMA, errors, exact_eps
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genlab.diffusion.samplers import make_sampler
from genlab.diffusion.samplers.ddim import DDIMSampler
from genlab.diffusion.samplers.dpm_solver import DPMSolverSampler, dpm_solver_timesteps
from genlab.diffusion.schedules import CosineSchedule, LinearSchedule
from genlab.errors import GenlabError

REPO = Path(__file__).resolve().parent.parent
LINEAR = LinearSchedule(1000)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_output_converges_to_the_gaussian_data_as_nfe_grows():
    results = {nfe: errors(DPMSolverSampler(steps=nfe, clip_x0=False), LINEAR) for nfe in (4, 8, 16, 32)}
    maps = [r["map"] for r in results.values()]
    covs = [r["cov"] for r in results.values()]
    # Each doubling of NFE shrinks the distance to the exact ODE map by ≥ 1.5 (≈ 2 while the first-order
    # final jump from t ≈ T/NFE to the clean image dominates, → 4 beyond).
    assert all(b < a / 1.5 for a, b in pairwise(maps)), results
    assert all(b < a for a, b in pairwise(covs)), results
    for nfe, result in results.items():  # closer than DDIM with as many evaluations
        assert result["map"] < errors(DDIMSampler(steps=nfe, clip_x0=False), LINEAR)["map"]
    # x_T ~ N(0, I) is not quite the marginal at T − 1 (√ᾱ ≈ 0.006): a mean floor of ≈ 1e-3.
    assert results[32]["map"] < 0.03 and results[32]["mean"] < 2e-3 and results[32]["cov"] < 0.012


def test_samples_of_the_seeded_sampler_have_the_data_mean_and_covariance():
    x = DPMSolverSampler(steps=32, clip_x0=False).sample(exact_eps(LINEAR), LINEAR, (4000, *SHAPE), gen(0))
    flat = x.reshape(-1, 3).double()
    assert torch.allclose(flat.mean(0), MU, atol=0.02)
    assert torch.allclose(flat.T.cov(), SIGMA, atol=0.02)


def random_net(schedule):
    """A fixed nonlinear ε-net: the Gaussian data's exact ε plus ᾱ_t·tanh(W x + sin(t/100 + c))."""
    W = torch.randn(12, 12, generator=gen(3), dtype=torch.float64) * 0.5
    exact = exact_eps(schedule)

    def net(x, t):
        ab = schedule.alphas_cumprod.double()[t].view(-1, 1)
        wobble = torch.tanh(x.reshape(-1, 12) @ W + torch.sin(t.double().view(-1, 1) / 100 + torch.arange(12) / 5))
        return exact(x.reshape(-1, 3, 1, 1), t.repeat_interleave(4)).reshape(x.shape) + (ab * wobble).view_as(x)

    return net


def diffusers_sample(schedule, net, noise, steps, same_table=False, **config):
    scheduler = DPMSolverMultistepScheduler(
        num_train_timesteps=schedule.timesteps,
        trained_betas=schedule.betas.numpy(),
        algorithm_type="dpmsolver++",
        solver_order=2,
        prediction_type="epsilon",
        timestep_spacing="linspace",
        **config,
    )
    if same_table:  # diffusers' float32 cumprod of the betas loses the cosine schedule's tiny ᾱ at T − 1
        scheduler.alphas_cumprod = schedule.alphas_cumprod.clone()
    scheduler.set_timesteps(steps)
    x = noise.clone()
    for t in scheduler.timesteps:
        x = scheduler.step(net(x, t.expand(len(x))), t, x).prev_sample
    return x


@pytest.mark.parametrize(
    ("schedule", "steps"),
    [(LINEAR, 2), (LINEAR, 3), (LINEAR, 5), (LINEAR, 10), (LINEAR, 25), (CosineSchedule(1000), 10)],
    ids=["linear-2", "linear-3", "linear-5", "linear-10", "linear-25", "cosine-10"],
)
def test_agrees_with_diffusers_dpm_solver_multistep(schedule, steps):
    net = random_net(schedule)
    noise = torch.randn(3, 3, 2, 2, generator=gen(1), dtype=torch.float64)
    ours = DPMSolverSampler(steps=steps, clip_x0=False).sample(net, schedule, noise.shape, x_start=noise)
    theirs = diffusers_sample(schedule, net, noise, steps, same_table=isinstance(schedule, CosineSchedule))
    # diffusers keeps its sigmas and each step's sample in float32: agreement at float32 precision.
    assert (ours - theirs).abs().max().item() < 5e-6
    if steps > 2:  # second-order steps: far from DDIM with as many evaluations
        ddim = DDIMSampler(steps=steps, clip_x0=False).sample(net, schedule, noise.shape, x_start=noise)
        assert (ddim - theirs).abs().max().item() > 1e-2


def test_clip_x0_agrees_with_diffusers_thresholding_at_sample_max_value_1():
    def loud(x, t):  # x̂_0 far outside [−1, 1]
        return -3 * x + torch.sin(t.double() / 50).view(-1, 1, 1, 1)

    noise = torch.randn(3, 3, 2, 2, generator=gen(2), dtype=torch.float64)
    ours = DPMSolverSampler(steps=6, clip_x0=True).sample(loud, LINEAR, noise.shape, x_start=noise)
    theirs = diffusers_sample(LINEAR, loud, noise, 6, thresholding=True, sample_max_value=1.0)
    unclipped = DPMSolverSampler(steps=6, clip_x0=False).sample(loud, LINEAR, noise.shape, x_start=noise)
    assert (ours - theirs).abs().max().item() < 5e-6
    assert ours.abs().max() <= 1 + 1e-6 < unclipped.abs().max()


@pytest.mark.parametrize("timesteps", [1000, 50])
def test_timesteps_are_diffusers_linspace_spacing_for_every_step_count(timesteps):
    schedule = LinearSchedule(timesteps)
    scheduler = DPMSolverMultistepScheduler(num_train_timesteps=timesteps, trained_betas=schedule.betas.numpy())
    for steps in range(2, timesteps):
        scheduler.set_timesteps(steps)
        assert DPMSolverSampler(steps=steps).timesteps(timesteps, timesteps - 1) == scheduler.timesteps.tolist()


@pytest.mark.parametrize(("start", "steps"), [(999, 20), (999, 999), (10, 10), (7, 3), (1, 1), (0, 1)])
def test_timesteps_are_distinct_descending_and_positive_up_to_the_start(start, steps):
    times = dpm_solver_timesteps(start, steps)
    assert len(times) == steps and times[0] == start
    assert times == sorted(set(times), reverse=True)
    assert times[-1] >= 1 or start == 0


def test_a_later_start_scales_the_steps_to_the_span_and_labels_the_trajectory():
    sampler = DPMSolverSampler(steps=20)
    assert sampler.nfe(1000) == 20 and sampler.nfe(1000, start_t=499) == 10 and sampler.nfe(1000, start_t=0) == 1
    calls = []

    def eps_fn(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    x_start = torch.full((2, 1, 2, 2), 0.5)
    x, trajectory = sampler.sample(
        eps_fn, LINEAR, x_start.shape, gen(), x_start=x_start, start_t=499, return_trajectory=True
    )
    assert calls == dpm_solver_timesteps(499, 10)
    assert [t for t, _ in trajectory] == [500, *[t + 1 for t in calls[1:]], 0]
    assert torch.equal(trajectory[0][1], x_start) and torch.equal(trajectory[-1][1], x)
    # ε̂ = 0 at the last evaluation: the sample is x̂_0 = x_t/√ᾱ_t there (clipped).
    t_last = calls[-1]
    expected = (trajectory[-2][1] / LINEAR.sqrt_alphas_cumprod[t_last]).clamp(-1, 1)
    assert torch.allclose(x, expected)


def test_same_seed_gives_identical_samples_and_calls_share_no_state():
    sampler = DPMSolverSampler(steps=5)
    a = sampler.sample(exact_eps(LINEAR), LINEAR, (3, *SHAPE), gen(7))
    b = sampler.sample(exact_eps(LINEAR), LINEAR, (3, *SHAPE), gen(7))
    c = sampler.sample(exact_eps(LINEAR), LINEAR, (3, *SHAPE), gen(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("steps", [1, 0, -3, 2.5, True])
def test_steps_below_two_are_refused(steps):
    with pytest.raises(GenlabError, match=f"steps={steps}: DPM-Solver\\+\\+ 2M needs steps ≥ 2"):
        DPMSolverSampler(steps=steps)


def test_steps_beyond_the_schedule_are_refused_when_sampling():
    schedule = LinearSchedule(20)
    with pytest.raises(GenlabError, match=r"steps=20 is out of range.*2\.\.19"):
        DPMSolverSampler(steps=20).sample(exact_eps(schedule), schedule, (1, *SHAPE), gen())


def test_registered_by_name_and_built_from_its_yaml():
    cfg = OmegaConf.load(REPO / "configs/model/sampler/dpm_solver.yaml")
    assert instantiate(cfg) == DPMSolverSampler() == make_sampler("dpm_solver")
    assert DPMSolverSampler(steps=9).options() == {"sampler": "dpm_solver", "clip_x0": True, "steps": 9}
