"""The denoising UNet: shapes, time and class conditioning, sizes of the shipped presets."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from genlab.errors import GenlabError
from genlab.nets.diffusion_unet import DiffusionUNet, sinusoidal_embedding

TINY = {"base_channels": 8, "channel_mults": (1, 2), "num_res_blocks": 1, "attention_resolutions": (8,)}


@pytest.mark.parametrize(("channels", "size"), [(1, 32), (3, 28), (3, 16)])
def test_output_has_the_input_shape(channels, size):
    net = DiffusionUNet(channels, size, **TINY)
    x = torch.randn(2, channels, size, size)
    assert net(x, torch.tensor([0, 999])).shape == x.shape


def test_time_changes_the_output():
    net = DiffusionUNet(1, 16, **TINY)
    for p in net.parameters():  # zero-initialised output layers would hide the dependence
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(1, 1, 16, 16).repeat(2, 1, 1, 1)
    out = net(x, torch.tensor([3, 700]))
    assert not torch.allclose(out[0], out[1])


def test_sinusoidal_embedding_values():
    emb = sinusoidal_embedding(torch.tensor([0, 5]), 8)
    assert emb.shape == (2, 8)
    torch.testing.assert_close(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))
    assert emb[1, 0].item() == pytest.approx(torch.sin(torch.tensor(5.0)).item(), abs=1e-6)


def test_class_embedding_has_a_null_class_and_changes_the_output():
    net = DiffusionUNet(1, 16, num_classes=10, **TINY)
    assert net.class_emb.num_embeddings == 11
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(1, 1, 16, 16).repeat(3, 1, 1, 1)
    t = torch.full((3,), 100)
    out = net(x, t, torch.tensor([1, 7, 10]))
    assert not torch.allclose(out[0], out[1])
    torch.testing.assert_close(net(x[:1], t[:1]), out[2:3])  # no labels = the null class


def test_image_size_not_divisible_is_refused():
    with pytest.raises(GenlabError, match="image_size=30"):
        DiffusionUNet(1, 30, channel_mults=(1, 2, 2, 2))


@pytest.mark.parametrize(
    ("overrides", "low", "high"),
    [(["model=ddpm"], 1e6, 1.2e6), (["model=ddpm_large", "data=cifar10"], 20e6, 60e6)],
)
def test_shipped_presets_have_the_documented_size(cfg_factory, overrides, low, high):
    cfg = cfg_factory("train", overrides)
    net = instantiate(cfg.model.net)(num_classes=0)
    size = sum(p.numel() for p in net.parameters())
    assert low <= size <= high, size
