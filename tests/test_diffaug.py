"""DiffAugment: the reference's formulas, whole-pixel zero-padded shifts, cutout area, gradients, pairs, seeds."""

from __future__ import annotations

import itertools

import pytest
import torch

from genlab.augment.diffaug import DiffAugment, DiffAugmentParams
from genlab.errors import GenlabError

POLICIES = ["color", "translation", "cutout", "color,translation,cutout"]


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Brute force: out[i, j] = image[i + dy, j + dx], 0 outside."""
    out = torch.zeros_like(image)
    h, w = image.shape[-2:]
    for i, j in itertools.product(range(h), range(w)):
        if 0 <= i + dy < h and 0 <= j + dx < w:
            out[..., i, j] = image[..., i + dy, j + dx]
    return out


def test_color_follows_the_reference_formulas_per_image():
    x = torch.randn(2, 3, 4, 5)
    b, s, c = torch.tensor([0.3, -0.4]), torch.tensor([0.2, 1.7]), torch.tensor([0.6, 1.4])
    params = DiffAugmentParams(index=None, brightness=b, saturation=s, contrast=c)
    out = DiffAugment("color").apply(x, params)
    for k in range(2):
        y = x[k] + b[k]
        y = (y - y.mean(0)) * s[k] + y.mean(0)
        y = (y - y.mean()) * c[k] + y.mean()
        torch.testing.assert_close(out[k], y)


def test_saturation_is_skipped_on_one_channel_and_colour_is_not_clamped():
    x = torch.full((1, 1, 3, 3), 0.9)
    x[0, 0, 0, 0] = -1.0
    params = DiffAugmentParams(
        index=None, brightness=torch.tensor([0.5]), saturation=torch.tensor([0.0]), contrast=torch.tensor([1.5])
    )
    out = DiffAugment("color").apply(x, params)
    y = x + 0.5  # a saturation factor of 0 would flatten a colour image; on one channel it is skipped
    torch.testing.assert_close(out, (y - y.mean()) * 1.5 + y.mean())
    assert out.max() > 1.5 and out.min() < -1.0  # no clamping to [-1, 1]


def test_default_strengths_draw_the_reference_ranges():
    params = DiffAugment("color").sample(20_000, 8, 8, generator=seeded())
    for values, low, high in ((params.brightness, -0.5, 0.5), (params.saturation, 0, 2), (params.contrast, 0.5, 1.5)):
        assert low <= values.min() < low + 0.01 and high - 0.01 < values.max() <= high
        assert values.mean().item() == pytest.approx((low + high) / 2, abs=0.02)
    weak = DiffAugment("color", brightness=0.1, saturation=0.2, contrast=0.3).sample(5000, 8, 8, generator=seeded())
    assert weak.brightness.abs().max() <= 0.1 and (weak.saturation - 1).abs().max() <= 0.2
    assert (weak.contrast - 1).abs().max() <= 0.3


def test_translation_is_a_whole_pixel_shift_with_zero_padding():
    x = torch.arange(1.0, 17.0).view(1, 1, 4, 4)
    aug = DiffAugment("translation", translation_ratio=0.25)  # shifts in [-1, 1]
    out = aug.apply(x, DiffAugmentParams(index=None, translation=torch.tensor([[1, -1]])))
    expected = torch.tensor([[0.0, 5, 6, 7], [0, 9, 10, 11], [0, 13, 14, 15], [0, 0, 0, 0]])
    assert torch.equal(out[0, 0], expected)


def test_translation_with_a_fixed_generator_hits_every_shift_exactly():
    x = torch.rand(60, 2, 8, 8) * 2 - 1  # shift s = int(8 · 0.125 + 0.5) = 1
    out = DiffAugment("translation")(x, generator=seeded(1))
    seen = set()
    for k in range(len(x)):
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if torch.equal(out[k], shifted(x[k], dy, dx))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 9  # random per image, all nine shifts


def test_cutout_sets_a_clipped_square_to_zero():
    x = torch.full((1, 2, 8, 8), -0.7)
    out = DiffAugment("cutout").apply(x, DiffAugmentParams(index=None, cutout=torch.tensor([[-1, 6]])))
    expected = x.clone()
    expected[:, :, 0:3, 6:8] = 0.0  # the 4×4 square starting at (-1, 6), clipped; 0 = mid-grey on [-1, 1]
    assert torch.equal(out, expected)


def test_cutout_zeroes_the_reference_share_of_pixels():
    n, side = 4000, 8
    out = DiffAugment("cutout")(torch.ones(n, 1, side, side), generator=seeded(2))
    # Square of 4 with its centre uniform on {0, ..., 8}: covered rows per centre 2,3,4,4,4,4,4,3,2.
    expected_share = (30 / 9 / side) ** 2
    masked = out == 0
    assert masked.float().mean().item() == pytest.approx(expected_share, abs=0.005)
    rows, cols = masked.any(dim=3).sum(dim=(1, 2)), masked.any(dim=2).sum(dim=(1, 2))
    assert torch.equal(masked.sum(dim=(1, 2, 3)), rows * cols)  # each mask is one rectangle
    assert set(rows.tolist()) == {2, 3, 4} and set(cols.tolist()) == {2, 3, 4}


@pytest.mark.parametrize("policy", POLICIES)
def test_gradients_flow_to_the_generator_through_every_policy(policy):
    torch.manual_seed(0)
    generator = torch.nn.Linear(4, 3 * 8 * 8)
    fake = torch.tanh(generator(torch.randn(6, 4))).view(6, 3, 8, 8)
    critic = torch.randn(3, 8, 8)
    (DiffAugment(policy)(fake, generator=seeded()) * critic).sum().backward()
    assert generator.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("policy", POLICIES)
def test_augmentation_is_differentiable_wrt_the_images(policy):
    aug = DiffAugment(policy, p=0.6)
    x = torch.randn(5, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    params = aug.sample(5, 6, 6, generator=seeded(3))
    assert torch.autograd.gradcheck(lambda t: aug.apply(t, params), (x,))


def test_paired_tensors_get_the_same_transform():
    a = torch.rand(16, 3, 8, 8) * 2 - 1
    for policy in POLICIES:
        out_a, out_b = DiffAugment(policy)(a, a.clone(), generator=seeded(4))
        assert torch.equal(out_a, out_b)
    # Different channel counts: the geometric ops move and mask both alike.
    rgb, gray = DiffAugment("translation,cutout")(a, a[:, :1].clone(), generator=seeded(5))
    assert torch.equal(rgb[:, :1], gray)
    with pytest.raises(ValueError, match="same N, H, W"):
        DiffAugment("cutout")(a, a[:, :, :4])


def test_same_seed_same_result_and_draws_differ_per_image():
    x = torch.rand(32, 3, 8, 8) * 2 - 1
    aug = DiffAugment("color,translation,cutout")
    assert torch.equal(aug(x, generator=seeded(7)), aug(x, generator=seeded(7)))
    assert not torch.equal(aug(x, generator=seeded(7)), aug(x, generator=seeded(8)))
    params = aug.sample(32, 8, 8, generator=seeded(7))
    assert params.brightness.unique().numel() == 32 and params.cutout.unique(dim=0).shape[0] > 10


def test_p_is_the_share_of_augmented_images():
    x = torch.rand(2000, 1, 8, 8) * 2 - 1
    aug = DiffAugment("color", p=0.0)
    assert aug(x) is x
    aug.p = 0.3
    out = aug(x, generator=seeded(9))
    changed = (out != x).flatten(1).any(dim=1)
    assert changed.float().mean().item() == pytest.approx(0.3, abs=0.04)
    assert torch.equal(out[~changed], x[~changed])
    with pytest.raises(GenlabError, match=r"model\.diffaug_p=1\.5"):
        aug.p = 1.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"policy": "colour,cutout"}, r"model\.diffaug='colour,cutout'.*color, translation, cutout"),
        ({"policy": ""}, r"model\.diffaug=''"),
        ({"policy": ["cutout", "cutout"]}, "names a policy twice"),
        ({"translation_ratio": -0.1}, r"model\.diffaug_translation_ratio=-0\.1 .*\[0\.0, 1\.0\]"),
        ({"cutout_ratio": 1.5}, r"model\.diffaug_cutout_ratio=1\.5"),
        ({"saturation": 2.0}, r"model\.diffaug_saturation=2\.0"),
        ({"p": -0.2}, r"model\.diffaug_p=-0\.2"),
    ],
)
def test_bad_options_name_the_option(kwargs, match):
    with pytest.raises(GenlabError, match=match):
        DiffAugment(**kwargs)


def test_policy_as_a_list():
    assert DiffAugment(["translation", " cutout"]).policy == ("translation", "cutout")
