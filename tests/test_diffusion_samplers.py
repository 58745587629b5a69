"""DDPM and DDIM samplers, checked with the exact noise predictor of Gaussian data."""

from __future__ import annotations

import pytest
import torch

from genlab.diffusion.samplers import check_sampler_options, ddim_sample, ddim_timesteps, ddpm_sample
from genlab.diffusion.schedules import CosineSchedule, LinearSchedule
from genlab.errors import GenlabError

MU, STD = 0.3, 0.2


def exact_eps(schedule):
    """E[ε | x_t] when x_0 ~ N(MU, STD²): the optimal ε-predictor, so sampling should give back N(MU, STD²)."""

    def eps_fn(x, t):
        ab = schedule.alphas_cumprod[t].view(-1, *([1] * (x.ndim - 1)))
        return (1 - ab).sqrt() * (x - ab.sqrt() * MU) / (ab * STD**2 + 1 - ab)

    return eps_fn


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    ("sampler", "kwargs"),
    [
        (ddpm_sample, {"variance": "beta"}),
        (ddpm_sample, {"variance": "posterior"}),
        (ddim_sample, {"steps": 25, "eta": 0.0}),
        (ddim_sample, {"steps": 100, "eta": 1.0}),
    ],
)
def test_samplers_with_the_exact_predictor_recover_the_data_distribution(sampler, kwargs):
    schedule = CosineSchedule(100)
    x = sampler(exact_eps(schedule), schedule, (3000, 1, 1, 1), gen(), clip_x0=False, **kwargs)
    assert x.mean().item() == pytest.approx(MU, abs=0.02)
    assert x.std().item() == pytest.approx(STD, rel=0.12)


@pytest.mark.parametrize(("sampler", "kwargs"), [(ddpm_sample, {}), (ddim_sample, {"steps": 10, "eta": 0.5})])
def test_same_seed_gives_identical_samples(sampler, kwargs):
    schedule = LinearSchedule(50)
    a = sampler(exact_eps(schedule), schedule, (3, 1, 4, 4), gen(7), **kwargs)
    b = sampler(exact_eps(schedule), schedule, (3, 1, 4, 4), gen(7), **kwargs)
    c = sampler(exact_eps(schedule), schedule, (3, 1, 4, 4), gen(8), **kwargs)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_ddim_with_eta_0_is_deterministic_given_x_T():
    schedule = LinearSchedule(100)
    x_T = torch.randn(3, 1, 4, 4, generator=gen(0))
    a = ddim_sample(exact_eps(schedule), schedule, x_T.shape, gen(1), steps=20, eta=0.0, x_start=x_T)
    b = ddim_sample(exact_eps(schedule), schedule, x_T.shape, gen(2), steps=20, eta=0.0, x_start=x_T)
    assert torch.equal(a, b)


def test_clipping_keeps_the_predicted_x0_in_range():
    schedule = LinearSchedule(30)

    def wild(x, t):
        return -10 * torch.ones_like(x)

    x = ddim_sample(wild, schedule, (2, 1, 4, 4), gen(), steps=5, clip_x0=True)
    assert x.abs().max() <= 1 + 1e-5


def test_start_t_runs_only_the_remaining_steps_and_trajectory_is_labelled():
    schedule = LinearSchedule(40)
    calls = []

    def eps_fn(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    x_start = torch.zeros(2, 1, 4, 4)
    x, trajectory = ddpm_sample(
        eps_fn, schedule, x_start.shape, gen(), x_start=x_start, start_t=9, return_trajectory=True
    )
    assert calls == list(range(9, -1, -1))
    assert [t for t, _ in trajectory] == list(range(10, -1, -1))
    assert torch.equal(trajectory[-1][1], x)
    assert torch.equal(trajectory[0][1], x_start)

    calls.clear()
    x, trajectory = ddim_sample(eps_fn, schedule, (2, 1, 4, 4), gen(), steps=8, return_trajectory=True)
    assert len(calls) == 8 and calls[0] == 39 and calls[-1] == 0
    assert trajectory[0][0] == 40 and trajectory[-1][0] == 0 and len(trajectory) == 9


@pytest.mark.parametrize(("start", "steps"), [(999, 50), (999, 1000), (499, 7), (0, 1), (10, 3)])
def test_ddim_timesteps_are_distinct_descending_and_span_the_range(start, steps):
    times = ddim_timesteps(start, steps)
    assert len(times) == steps
    assert times == sorted(set(times), reverse=True)
    assert times[0] == start and times[-1] == (0 if steps > 1 else start)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"steps": 1001}, "steps=1001"), ({"steps": 0}, "steps=0"), ({"eta": -0.1}, "eta=-0.1")],
)
def test_bad_sampler_options_are_refused(kwargs, needle):
    with pytest.raises(GenlabError) as info:
        check_sampler_options(1000, **kwargs)
    assert needle in str(info.value)


def test_start_t_outside_the_schedule_is_refused():
    schedule = LinearSchedule(10)
    with pytest.raises(GenlabError, match="start_t=10"):
        ddpm_sample(exact_eps(schedule), schedule, (1, 1, 2, 2), gen(), start_t=10)
