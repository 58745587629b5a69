"""Denoising autoencoder: shapes and ranges, parameter count, the corruption's statistics, a short training."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.data.digits import DigitsDataModule
from genlab.errors import GenlabError
from genlab.imaging import to_model_range
from genlab.nets.autoencoder import DenoisingAutoencoder, add_noise


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def psnr(images: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean per-image PSNR in dB of [-1, 1] images (data range 2)."""
    mse = (images - reference).square().flatten(1).mean(1)
    return (10 * torch.log10(4 / mse)).mean().item()


@pytest.mark.parametrize("size", [16, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_dae_keeps_the_image_shape_and_range(size, channels):
    net = DenoisingAutoencoder(channels, size, widths=(8, 16))
    noisy = add_noise(torch.rand(2, channels, size, size) * 2 - 1, 0.5)
    out = net(noisy)
    assert out.shape == (2, channels, size, size)
    assert out.min() >= -1 and out.max() <= 1


def test_dae_parameter_count_at_32px_one_channel():
    # conv 1→32 3×3, conv 32→64 3×3, convT 64→32 4×4, convT 32→32 4×4, conv 32→1 3×3 (all with bias)
    expected = (1 * 32 * 9 + 32) + (32 * 64 * 9 + 64) + (64 * 32 * 16 + 32) + (32 * 32 * 16 + 32) + (32 * 9 + 1)
    assert count(DenoisingAutoencoder(1, 32)) == expected == 68_321


@pytest.mark.parametrize(("size", "widths", "match"), [(30, (32, 64), "data.image_size=30"), (32, (), "widths")])
def test_dae_refuses_shapes_it_cannot_restore(size, widths, match):
    with pytest.raises(GenlabError, match=match):
        DenoisingAutoencoder(1, size, widths=widths)


def test_added_noise_has_the_factors_std_and_zero_mean():
    x = torch.rand(64, 1, 32, 32) * 2 - 1
    noise = add_noise(x, 0.3, torch.Generator().manual_seed(0)) - x
    n = noise.numel()  # 65,536: the mean's standard error is 0.3 / 256
    assert abs(noise.mean().item()) < 4 * 0.3 / math.sqrt(n)
    assert noise.std().item() == pytest.approx(0.3, rel=0.02)


def test_per_image_noise_factors():
    x = torch.zeros(3, 1, 64, 64)
    noise = add_noise(x, torch.tensor([0.0, 0.1, 0.5]), torch.Generator().manual_seed(0))
    assert torch.equal(noise[0], x[0])
    assert noise[1].std().item() == pytest.approx(0.1, rel=0.05)
    assert noise[2].std().item() == pytest.approx(0.5, rel=0.05)


def test_noise_is_deterministic_with_a_generator_and_not_clipped():
    x = -torch.ones(4, 1, 16, 16)  # a blank background, at the bottom of the range
    first = add_noise(x, 0.3, torch.Generator().manual_seed(7))
    assert torch.equal(first, add_noise(x, 0.3, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, add_noise(x, 0.3, torch.Generator().manual_seed(8)))
    # Unclipped: about half the background pixels go below -1, and the noise keeps zero mean there.
    assert 0.4 < (first < -1).float().mean().item() < 0.6
    assert abs((first - x).mean().item()) < 4 * 0.3 / 32
    assert torch.equal(add_noise(x, 0.0), x)


@pytest.mark.parametrize("factor", [-0.1, torch.tensor([0.2, -0.5])])
def test_negative_noise_factor_is_refused(factor):
    with pytest.raises(GenlabError, match=r"model\.noise_factor=-0\.\d+ must be >= 0"):
        add_noise(torch.zeros(2, 1, 8, 8), factor)


def test_dae_learns_to_denoise_digits():
    """512 digits at 16 px, 8 epochs at noise factor 0.3 (≈ 2.5 s on one thread)."""
    splits = DigitsDataModule(name="digits", channels=1, image_size=16, num_classes=10).load_splits()
    train = to_model_range(splits["train"].images[:512] / 255)
    test = to_model_range(splits["test"].images[:256] / 255)
    torch.manual_seed(0)
    net = DenoisingAutoencoder(1, 16)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), 32):
            x = train[order[start : start + 32]]
            loss = (net(add_noise(x, 0.3, generator)) - x).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    noisy = add_noise(test, 0.3, torch.Generator().manual_seed(1))
    with torch.no_grad():
        denoised = psnr(net(noisy), test)
    noisy_psnr = psnr(noisy, test)
    assert noisy_psnr == pytest.approx(20 * math.log10(2 / 0.3), abs=0.1)  # 16.5 dB
    # Better than the noisy input by a wide margin, and better than clipping it to [-1, 1] (17.9 dB).
    assert denoised > max(noisy_psnr, psnr(noisy.clamp(-1, 1), test)) + 4
