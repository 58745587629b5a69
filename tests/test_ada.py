"""ADA controller: r_t = E[sign(D(real))], p moved by sign(r_t − target)·batch·interval/speed, clamped, resumable."""

from __future__ import annotations

import pytest
import torch

from genlab.augment.ada import AdaptiveAugmentProbability
from genlab.augment.diffaug import DiffAugment
from genlab.errors import GenlabError


def test_p_rises_by_batch_times_interval_over_speed_while_r_t_is_above_target():
    ada = AdaptiveAugmentProbability(target=0.6, speed_images=320, interval=4)
    history = [ada.update(torch.full((8,), 2.0)) for _ in range(48)]
    # Each adjustment: 8 images · 4 updates / 320 = 0.1, every fourth update; clamped at 1.
    assert history[:3] == [0.0, 0.0, 0.0]
    assert history[3] == pytest.approx(0.1) and history[7] == pytest.approx(0.2)
    assert history[39] == pytest.approx(1.0) and history[-1] == 1.0
    assert ada.r_t == 1.0


def test_p_falls_while_r_t_is_below_target_and_stops_at_zero():
    ada = AdaptiveAugmentProbability(target=0.6, speed_images=320, interval=4, p_init=0.35)
    real = torch.tensor([1.0, 1.0, -1.0, 1.0, -2.0, 3.0, 1.0, -0.5])  # r_t = (5 − 3) / 8 = 0.25
    history = [ada.update(real) for _ in range(20)]
    assert ada.r_t == pytest.approx(0.25)
    assert history[3] == pytest.approx(0.25) and history[7] == pytest.approx(0.15)
    assert history[15] == 0.0 and history[-1] == 0.0


def test_r_t_averages_signs_over_the_interval_and_every_logit():
    ada = AdaptiveAugmentProbability(target=0.0, speed_images=100, interval=2, p_init=0.5)
    ada.update(torch.tensor([[[0.3, -0.1], [2.0, 0.0]]]))  # PatchGAN-like (1, 2, 2): signs 1, -1, 1, 0
    p = ada.update(torch.tensor([[[-4.0, -1.0], [5.0, -0.2]]]))  # -1, -1, 1, -1
    assert ada.r_t == pytest.approx(-1 / 8)
    assert p == pytest.approx(0.5 - 2 / 100)  # 2 images seen in the interval


def test_r_t_equal_to_target_leaves_p_alone():
    ada = AdaptiveAugmentProbability(target=0.5, speed_images=10, interval=1, p_init=0.4)
    assert ada.update(torch.tensor([1.0, 1.0, 1.0, -1.0])) == 0.4


def test_state_dict_resumes_mid_interval():
    first = AdaptiveAugmentProbability(target=0.6, speed_images=640, interval=4, p_init=0.5)
    batches = [torch.randn(8) + 0.3 for _ in range(14)]
    for logits in batches[:10]:
        first.update(logits)
    resumed = AdaptiveAugmentProbability(target=0.6, speed_images=640, interval=4)
    resumed.load_state_dict(first.state_dict())
    assert resumed.state_dict() == first.state_dict()
    for logits in batches[10:]:
        assert resumed.update(logits) == first.update(logits)
    assert resumed.r_t == first.r_t and resumed.p < 0.5


def train_tiny_discriminator(ada: AdaptiveAugmentProbability, augment: bool, steps: int = 200) -> list[float]:
    """BCE-train an MLP D on 8 fixed real images against fresh noise; feed its real logits to ``ada``."""
    torch.manual_seed(0)
    real = torch.rand(8, 1, 8, 8) * 2 - 1
    d = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.LeakyReLU(0.2), torch.nn.Linear(32, 1)
    )
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)
    aug = DiffAugment("translation,cutout", p=ada.p if augment else 0.0)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    r_t = []
    for step in range(steps):
        out_real = d(aug(real)).squeeze(1)
        out_fake = d(aug(torch.tanh(torch.randn(8, 1, 8, 8)))).squeeze(1)
        loss = bce(out_real, torch.ones(8)) + bce(out_fake, torch.zeros(8))
        opt.zero_grad()
        loss.backward()
        opt.step()
        p = ada.update(out_real)
        aug.p = p if augment else 0.0
        if step % ada.interval == ada.interval - 1:
            r_t.append(ada.r_t)
    return r_t


def test_p_rises_while_a_discriminator_memorises_a_tiny_set():
    ada = AdaptiveAugmentProbability(target=0.6, speed_images=2000, interval=4)
    r_t = train_tiny_discriminator(ada, augment=False)
    assert min(r_t[5:]) == 1.0  # D separates its 8 real images from noise: every real logit positive
    assert ada.p > 0.7  # 50 intervals × 32/2000 = 0.8 if r_t had been above target from the start


def test_with_augmentation_in_the_loop_p_settles_where_r_t_meets_the_target():
    ada = AdaptiveAugmentProbability(target=0.6, speed_images=2000, interval=4)
    r_t = train_tiny_discriminator(ada, augment=True)
    assert 0.1 < ada.p < 0.5
    assert sum(r_t[-25:]) / 25 == pytest.approx(0.6, abs=0.15)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target": 1.0}, r"model\.ada_target=1\.0"),
        ({"speed_images": 0}, r"model\.ada_speed_images=0"),
        ({"interval": 0}, r"model\.ada_interval=0"),
        ({"p_init": 1.2}, r"model\.ada_p_init=1\.2"),
    ],
)
def test_bad_options_name_the_option(kwargs, match):
    with pytest.raises(GenlabError, match=match):
        AdaptiveAugmentProbability(**kwargs)
