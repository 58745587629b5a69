"""RePaint: the paper's time schedule, its cost, exact known pixels, and harmonisation on Gaussian data."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from genlab.diffusion.masks import make_masks
from genlab.diffusion.repaint import RePaint, jump_schedule
from genlab.diffusion.samplers import Sampler
from genlab.diffusion.samplers.ddim import DDIMSampler
from genlab.diffusion.samplers.ddpm import DDPMSampler
from genlab.diffusion.schedules import CosineSchedule, LinearSchedule
from genlab.errors import GenlabError

MU, STD = 0.3, 0.5


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def exact_eps(schedule):
    """E[ε | x_t] when every image is one value a ~ N(MU, STD²) repeated over its last dimension (pixels
    perfectly correlated). Cov(x_t) = ᾱ Σ + (1 − ᾱ) I with Σ = STD² 11ᵀ: along the all-ones direction the
    variance is ᾱ P STD² + 1 − ᾱ (P pixels), across it 1 − ᾱ; E[ε | x_t] = √(1 − ᾱ) Cov(x_t)⁻¹ (x_t − √ᾱ MU)."""

    def eps_fn(x, t):
        ab = schedule.alphas_cumprod[t].view(-1, *([1] * (x.ndim - 1)))
        d = x - ab.sqrt() * MU
        along = d.mean(-1, keepdim=True)
        return (1 - ab).sqrt() * (along / (ab * x.shape[-1] * STD**2 + 1 - ab) + (d - along) / (1 - ab))

    return eps_fn


def test_the_time_schedule_follows_the_papers_rule_hand_computed():
    # K = 6, j = 2, r = 2: jump points 0 and 2 (levels below K − j = 4), one jump each.
    assert jump_schedule(list(range(5, -1, -1)), jump=2, resample=2) == [5, 4, 3, 2, 4, 3, 2, 1, 0, 2, 1, 0, -1]
    # K = 5, j = 1, r = 3: jump points 0..3, two jumps each: every step but 0 → −1 is walked three times.
    assert jump_schedule(list(range(4, -1, -1)), jump=1, resample=3) == [
        *[4, 3, 4, 3, 4, 3],
        *[2, 3, 2, 3, 2],
        *[1, 2, 1, 2, 1],
        *[0, 1, 0, 1, 0],
        -1,
    ]
    # r = 1 is the sampler's own schedule.
    assert jump_schedule([9, 5, 2, 0], jump=1, resample=1) == [9, 5, 2, 0, -1]
    # DDIM: the jumps count entries of the subsequence [99, 79, 59, 40, 20, 0].
    ddim = RePaint(resample=2, jump=2).time_schedule(DDIMSampler(steps=6), 100)
    assert ddim == [99, 79, 59, 40, 79, 59, 40, 20, 0, 40, 20, 0, -1]


def test_inpaint_walks_the_schedule_one_network_call_per_reverse_step():
    schedule = LinearSchedule(6)
    calls = []

    def eps_fn(x, t):
        calls.append(int(t[0]))
        return torch.zeros_like(x)

    repaint = RePaint(resample=2, jump=2)
    repaint.inpaint(DDPMSampler(), eps_fn, schedule, torch.zeros(2, 1, 2, 2), torch.ones(1, 1, 2, 2), gen())
    assert calls == [5, 4, 3, 4, 3, 2, 1, 2, 1, 0]
    assert repaint.nfe(DDPMSampler(), 6) == len(calls) == 10


@pytest.mark.parametrize("steps", [1, 2, 7, 10, 25, 50])
@pytest.mark.parametrize(("resample", "jump"), [(1, 1), (1, 30), (2, 1), (3, 2), (10, 3), (10, 10), (4, 24)])
def test_nfe_is_k_plus_the_repeated_stretches(steps, resample, jump):
    repaint = RePaint(resample=resample, jump=jump)
    if resample > 1 and jump >= steps:
        with pytest.raises(GenlabError, match=f"jump={jump} must be smaller than the sampler's {steps} steps"):
            repaint.nfe(DDIMSampler(steps=steps), 100)
        return
    expected = steps + (resample - 1) * jump * math.ceil((steps - jump) / jump)
    assert repaint.nfe(DDIMSampler(steps=steps), 100) == expected


def test_nfe_of_the_papers_setting():
    assert RePaint(resample=10, jump=10).nfe(DDPMSampler(), 250) == 250 + 9 * 10 * 24  # = 2410
    assert RePaint(resample=10, jump=10).nfe(DDIMSampler(steps=50), 1000) == 50 + 9 * 10 * 4  # = 410
    assert RePaint(resample=1, jump=10).nfe(DDPMSampler(), 1000) == 1000


@pytest.mark.parametrize("sampler", [DDPMSampler(), DDIMSampler(steps=8), DDIMSampler(steps=8, eta=1.0, clip_x0=False)])
@pytest.mark.parametrize("kind", ["center", "strokes", "half_left"])
def test_known_pixels_are_exactly_the_originals_after_the_final_step(sampler, kind):
    schedule = CosineSchedule(20)
    images = torch.rand(3, 3, 8, 8, generator=gen(1)) * 2 - 1
    mask = make_masks(kind, 3, 8, gen(2))
    out = RePaint(resample=3, jump=2).inpaint(sampler, exact_eps(schedule), schedule, images, mask, gen(3))
    keep = mask.expand_as(images) == 0
    assert torch.equal(out[keep], images[keep])
    assert (out[~keep] - images[~keep]).abs().min() > 0  # the masked region was regenerated


def test_a_single_mask_applies_to_the_whole_batch_and_a_seed_gives_the_same_images():
    schedule = LinearSchedule(10)
    images = torch.rand(4, 1, 6, 6, generator=gen(1)) * 2 - 1
    mask = make_masks("center", 1, 6, gen())
    repaint, sampler = RePaint(resample=2, jump=3), DDIMSampler(steps=5, eta=0.5)
    a, b, c = (repaint.inpaint(sampler, exact_eps(schedule), schedule, images, mask, gen(s)) for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    keep = (mask == 0).expand_as(images)
    assert torch.equal(a[keep], images[keep]) and torch.equal(c[keep], images[keep])


@pytest.mark.parametrize(("resample", "jump"), [(4, 3), (10, 5)])
def test_jumps_keep_the_marginals_so_an_all_white_mask_samples_the_data_distribution(resample, jump):
    # The forward jump q(x_t | x_s) must take exact samples at level s to exact samples at level t. Measured
    # std over seeds 0..4: 0.499..0.506; with one step's α_s instead of ᾱ_t/ᾱ_s for a j-step jump 0.42..0.45.
    # DDPM with β_t variance is the sampler that is itself near-exact here (DDIM and β̃_t shrink the spread
    # by a few percent at T = 100 even without jumps); DDIM shares the jump code, its jump targets are
    # checked by the schedule test.
    schedule = CosineSchedule(100)
    images, white = torch.zeros(10000, 1, 1, 1), torch.ones(1, 1, 1, 1)
    repaint, sampler = RePaint(resample=resample, jump=jump), DDPMSampler(clip_x0=False)
    out = repaint.inpaint(sampler, exact_eps(schedule), schedule, images, white, gen(5))
    assert out.mean().item() == pytest.approx(MU, abs=0.03)
    assert out.std().item() == pytest.approx(STD, rel=0.04)


@pytest.mark.parametrize("sampler", [DDPMSampler(clip_x0=False), DDIMSampler(steps=20, eta=0.0, clip_x0=False)])
def test_resampling_harmonises_the_filled_pixel_with_the_known_one(sampler):
    # Two-pixel images (a, a), a ~ N(MU, STD²): the conditional of pixel 2 given pixel 1 is pixel 1 itself.
    # Plain paste-back (r = 1) conditions only through noised copies of pixel 1; resampling lets the model
    # reconcile the two regions. Measured RMS gap |x2 − x1| (seeds 0..3 agree to ±0.003), r = 1 / (5, j = 1) /
    # (10, j = 5): DDPM 0.085 / 0.056 / 0.067; DDIM η = 0 0.146 / 0.070 / 0.099; √2·STD ≈ 0.71 unconditioned.
    # Paste-back also shrinks the filled pixel's spread (std 0.46, DDIM 0.41, vs 0.5); resampling restores it.
    schedule = CosineSchedule(50)
    a = MU + STD * torch.randn(4000, generator=gen(0))
    images = a.view(-1, 1, 1, 1).expand(-1, 1, 1, 2).clone()
    mask = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2)
    gap, spread = {}, {}
    for r, j in [(1, 1), (5, 1), (10, 5)]:
        out = RePaint(resample=r, jump=j).inpaint(sampler, exact_eps(schedule), schedule, images, mask, gen(1))
        assert torch.equal(out[..., 0], images[..., 0])
        assert out[..., 1].mean().item() == pytest.approx(MU, abs=0.03)
        gap[r] = (out[..., 1] - out[..., 0]).pow(2).mean().sqrt().item()
        spread[r] = abs(out[..., 1].std() - a.std()).item()
    assert gap[1] < 0.2, gap  # paste-back alone already conditions
    assert gap[5] < 0.8 * gap[1] and gap[10] < 0.9 * gap[1], gap
    assert spread[5] < 0.5 * spread[1], spread


@dataclass(frozen=True)
class Multistep(Sampler):
    """A sampler that is not a StepSampler; it has no name when defined, so it joins no registry."""


def test_a_multistep_sampler_is_refused_by_name():
    Multistep.name = "dpm_solver_pp"
    try:
        with pytest.raises(GenlabError) as info:
            RePaint().nfe(Multistep(), 100)
    finally:
        Multistep.name = ""
    message = str(info.value)
    assert "sampler=dpm_solver_pp cannot inpaint" in message
    assert "DPM-Solver++" in message and "does not compose with jumps" in message
    assert "sampler=ddim or sampler=ddpm" in message


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: RePaint(resample=0), "resample=0 must be an integer ≥ 1"),
        (lambda: RePaint(jump=0), "jump=0 must be an integer ≥ 1"),
        (lambda: RePaint(jump=2.5), "jump=2.5 must be an integer ≥ 1"),
        (lambda: RePaint(resample=3, jump=5).nfe(DDIMSampler(steps=5), 50), "jump=5 must be smaller"),
        (lambda: RePaint().nfe(DDIMSampler(steps=50), 20), "steps=50 is out of range"),
    ],
)
def test_bad_options_are_refused(make, needle):
    with pytest.raises(GenlabError, match=needle):
        make()


@pytest.mark.parametrize(
    ("mask", "needle"),
    [
        (torch.ones(2, 1, 4, 4), r"does not fit the images' \(3, 1, 4, 4\)"),
        (torch.ones(3, 1, 4, 5), "must be \\(3 or 1, 1, 4, 4\\)"),
        (torch.full((3, 1, 4, 4), 0.5), "only 0 \\(keep\\) and 1 \\(regenerate\\)"),
    ],
)
def test_masks_that_do_not_fit_are_refused(mask, needle):
    schedule = LinearSchedule(5)
    with pytest.raises(GenlabError, match=needle):
        RePaint(resample=1).inpaint(DDPMSampler(), exact_eps(schedule), schedule, torch.zeros(3, 1, 4, 4), mask)
