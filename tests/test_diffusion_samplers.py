"""DDPM and DDIM sampler objects, checked with the exact noise predictor of Gaussian data."""

from __future__ import annotations

import pytest
import torch

from genlab.diffusion.samplers import make_sampler, registered_samplers
from genlab.diffusion.samplers.ddim import DDIMSampler, ddim_timesteps
from genlab.diffusion.samplers.ddpm import DDPMSampler
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
    "sampler",
    [
        DDPMSampler(variance="beta", clip_x0=False),
        DDPMSampler(variance="posterior", clip_x0=False),
        DDIMSampler(steps=25, eta=0.0, clip_x0=False),
        DDIMSampler(steps=100, eta=1.0, clip_x0=False),
    ],
)
def test_samplers_with_the_exact_predictor_recover_the_data_distribution(sampler):
    schedule = CosineSchedule(100)
    x = sampler.sample(exact_eps(schedule), schedule, (3000, 1, 1, 1), gen())
    assert x.mean().item() == pytest.approx(MU, abs=0.02)
    assert x.std().item() == pytest.approx(STD, rel=0.12)


@pytest.mark.parametrize("sampler", [DDPMSampler(), DDIMSampler(steps=10, eta=0.5)])
def test_same_seed_gives_identical_samples(sampler):
    schedule = LinearSchedule(50)
    a = sampler.sample(exact_eps(schedule), schedule, (3, 1, 4, 4), gen(7))
    b = sampler.sample(exact_eps(schedule), schedule, (3, 1, 4, 4), gen(7))
    c = sampler.sample(exact_eps(schedule), schedule, (3, 1, 4, 4), gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_ddim_with_eta_0_is_deterministic_given_x_T():
    schedule = LinearSchedule(100)
    x_T = torch.randn(3, 1, 4, 4, generator=gen(0))
    sampler = DDIMSampler(steps=20, eta=0.0)
    a = sampler.sample(exact_eps(schedule), schedule, x_T.shape, gen(1), x_start=x_T)
    b = sampler.sample(exact_eps(schedule), schedule, x_T.shape, gen(2), x_start=x_T)
    assert torch.equal(a, b)


def test_clipping_keeps_the_predicted_x0_in_range_and_its_absence_does_not():
    schedule = LinearSchedule(30)

    def wild(x, t):
        return -10 * torch.ones_like(x)

    clipped = DDIMSampler(steps=5, clip_x0=True).sample(wild, schedule, (2, 1, 4, 4), gen())
    unclipped = DDIMSampler(steps=5, clip_x0=False).sample(wild, schedule, (2, 1, 4, 4), gen())
    assert clipped.abs().max() <= 1 + 1e-5
    assert unclipped.abs().max() > 2


def test_start_t_runs_only_the_remaining_steps_and_trajectory_is_labelled():
    schedule = LinearSchedule(40)
    calls = []

    def eps_fn(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    x_start = torch.zeros(2, 1, 4, 4)
    x, trajectory = DDPMSampler().sample(
        eps_fn, schedule, x_start.shape, gen(), x_start=x_start, start_t=9, return_trajectory=True
    )
    assert calls == list(range(9, -1, -1))
    assert [t for t, _ in trajectory] == list(range(10, -1, -1))
    assert torch.equal(trajectory[-1][1], x)
    assert torch.equal(trajectory[0][1], x_start)

    calls.clear()
    x, trajectory = DDIMSampler(steps=8).sample(eps_fn, schedule, (2, 1, 4, 4), gen(), return_trajectory=True)
    assert len(calls) == 8 and calls[0] == 39 and calls[-1] == 0
    assert trajectory[0][0] == 40 and trajectory[-1][0] == 0 and len(trajectory) == 9


def test_ddim_steps_are_scaled_to_a_later_start_and_counted_as_nfe():
    sampler = DDIMSampler(steps=50)
    assert sampler.nfe(1000) == 50
    assert sampler.nfe(1000, start_t=499) == 25
    assert sampler.nfe(1000, start_t=4) == 1
    assert DDPMSampler().nfe(1000) == 1000
    assert DDPMSampler().nfe(1000, start_t=299) == 300


@pytest.mark.parametrize(("start", "steps"), [(999, 50), (999, 1000), (499, 7), (0, 1), (10, 3)])
def test_ddim_timesteps_are_distinct_descending_and_span_the_range(start, steps):
    times = ddim_timesteps(start, steps)
    assert len(times) == steps
    assert times == sorted(set(times), reverse=True)
    assert times[0] == start and times[-1] == (0 if steps > 1 else start)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: DDIMSampler(steps=0), "steps=0"),
        (lambda: DDIMSampler(eta=-0.1), "eta=-0.1"),
        (lambda: DDPMSampler(variance="huge"), "variance=huge"),
        (lambda: make_sampler("ddpm", steps=20), "steps=20 is not an option of sampler=ddpm"),
        (lambda: make_sampler("nosuch"), "sampler=nosuch"),
        (lambda: DDIMSampler().replace(variance="beta"), "variance=beta is not an option of sampler=ddim"),
    ],
)
def test_bad_sampler_options_are_refused(make, needle):
    with pytest.raises(GenlabError) as info:
        make()
    assert needle in str(info.value)


def test_steps_beyond_the_schedule_are_refused_when_sampling():
    schedule = LinearSchedule(20)
    with pytest.raises(GenlabError, match="steps=50 is out of range"):
        DDIMSampler(steps=50).sample(exact_eps(schedule), schedule, (1, 1, 2, 2), gen())


def test_start_t_outside_the_schedule_is_refused():
    schedule = LinearSchedule(10)
    with pytest.raises(GenlabError, match="start_t=10"):
        DDPMSampler().sample(exact_eps(schedule), schedule, (1, 1, 2, 2), gen(), start_t=10)


def test_registry_holds_every_sampler_by_name_with_its_options():
    assert {"ddpm", "ddim"} <= set(registered_samplers())
    assert make_sampler("ddim", steps=7) == DDIMSampler(steps=7)
    assert DDIMSampler.option_names() == ("clip_x0", "steps", "eta")
    assert DDIMSampler(steps=7).options() == {"sampler": "ddim", "clip_x0": True, "steps": 7, "eta": 0.0}
