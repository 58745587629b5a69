"""CycleGAN's nets: the ResNet generator and the unconditional instance-norm PatchGAN, against the
official architecture's parameter counts (derived layer by layer below)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.nets.patchgan import PatchGANDiscriminator, output_size
from genlab.nets.resnet_generator import ResidualBlock, ResnetGenerator
from genlab.nets.unet import UNetGenerator, norm_layer


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    """Parameters of a k×k (transposed) convolution."""
    return c_in * c_out * k * k + (c_out if bias else 0)


def resnet_count(c_in: int, c_out: int, ngf: int, blocks: int) -> int:
    """The official ResnetGenerator with instance norm (no affine parameters, every conv has a bias)."""
    return (
        conv(c_in, ngf, 7)
        + conv(ngf, 2 * ngf, 3)
        + conv(2 * ngf, 4 * ngf, 3)
        + blocks * 2 * conv(4 * ngf, 4 * ngf, 3)
        + conv(4 * ngf, 2 * ngf, 3)
        + conv(2 * ngf, ngf, 3)
        + conv(ngf, c_out, 7)
    )


def patchgan_count(c_in: int, ndf: int) -> int:
    """The official 70×70 NLayerDiscriminator (n_layers=3) with instance norm: every conv has a bias."""
    widths = [c_in, ndf, 2 * ndf, 4 * ndf, 8 * ndf, 1]
    return sum(conv(a, b, 4) for a, b in itertools.pairwise(widths))


# ----------------------------------------------------------------------------- ResNet generator
def test_resnet_9_blocks_has_the_official_parameter_count():
    assert resnet_count(3, 3, 64, 9) == 11_378_179  # the official resnet_9blocks (11.378 M)
    net = ResnetGenerator(3, 3, image_size=256)
    assert net.n_blocks == 9
    assert n_params(net) == 11_378_179


def test_resnet_6_blocks_count_is_three_blocks_fewer():
    six = ResnetGenerator(3, 3, image_size=128)
    assert six.n_blocks == 6
    assert n_params(six) == resnet_count(3, 3, 64, 6) == 7_837_699  # official resnet_6blocks: 7.837 M
    assert n_params(ResnetGenerator(3, 3, image_size=256)) - n_params(six) == 3 * 2 * conv(256, 256, 3)


@pytest.mark.parametrize(("size", "blocks"), [(32, 6), (128, 6), (132, 9), (256, 9)])
def test_block_count_follows_the_image_size(size, blocks):
    net = ResnetGenerator(1, 1, image_size=size, ngf=4)
    assert sum(isinstance(m, ResidualBlock) for m in net.modules()) == blocks
    assert ResnetGenerator(1, 1, image_size=size, ngf=4, n_blocks=2).n_blocks == 2


def test_resnet_shapes_range_and_attributes():
    net = ResnetGenerator(1, 3, image_size=32, ngf=8, n_blocks=2)
    assert (net.in_channels, net.out_channels, net.image_size) == (1, 3, 32)
    x = torch.randn(2, 1, 32, 32) * 3
    bottleneck = net.net[:10](x)  # stem (4 layers) + two down-samplings (3 layers each)
    assert bottleneck.shape == (2, 32, 8, 8)
    out = net(x)
    assert out.shape == (2, 3, 32, 32)
    assert out.abs().max() <= 1.0
    assert not torch.allclose(out[0], out[1])


def test_resnet_matches_the_unet_constructor_keywords():
    kwargs = {"in_channels": 1, "out_channels": 1, "image_size": 32, "ngf": 4, "norm": "instance", "dropout": 0.0}
    for net in (ResnetGenerator(**kwargs), UNetGenerator(**kwargs)):
        assert (net.in_channels, net.out_channels, net.image_size) == (1, 1, 32)


def test_instance_norm_is_not_affine_and_every_conv_keeps_its_bias():
    net = ResnetGenerator(3, 3, image_size=32, ngf=8, n_blocks=1)
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 1 + 2 + 2 + 2  # stem, two downs, the block's two, two ups
    assert all(not m.affine and not m.track_running_stats for m in norms)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert all(m.bias is not None for m in convs)
    batch = ResnetGenerator(3, 3, image_size=32, ngf=8, n_blocks=1, norm="batch")
    assert [m.bias is not None for m in batch.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)] == [
        False
    ] * 7 + [True]


def test_residual_block_adds_its_input():
    block = ResidualBlock(4, "instance", use_bias=True, dropout=0.0)
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        block.block[5].weight.zero_()
        block.block[5].bias.zero_()
    torch.testing.assert_close(block(x), x)
    padded = [m for m in block.modules() if isinstance(m, nn.ReflectionPad2d)]
    assert [m.padding for m in padded] == [(1, 1, 1, 1)] * 2
    assert sum(isinstance(m, nn.Dropout) for m in ResidualBlock(4, "instance", True, 0.5).modules()) == 1


@pytest.mark.parametrize("size", [30, 4, 0])
def test_resnet_refuses_image_sizes_its_downsamplings_cannot_take(size):
    with pytest.raises(GenlabError, match=f"image_size={size} does not suit the ResNet generator"):
        ResnetGenerator(3, 3, image_size=size)


def test_resnet_refuses_bad_options():
    with pytest.raises(GenlabError, match="n_blocks=-1"):
        ResnetGenerator(3, 3, image_size=32, n_blocks=-1)
    with pytest.raises(GenlabError, match=r"dropout=1\.5"):
        ResnetGenerator(3, 3, image_size=32, dropout=1.5)
    with pytest.raises(GenlabError, match="norm=group"):
        ResnetGenerator(3, 3, image_size=32, norm="group")


# ----------------------------------------------------------------------------- PatchGAN
def test_norm_layer_instance_has_no_parameters_and_batch_is_unchanged():
    instance = norm_layer("instance", 8)
    assert isinstance(instance, nn.InstanceNorm2d)
    assert not instance.affine and not instance.track_running_stats and n_params(instance) == 0
    batch = norm_layer("batch", 8)
    assert isinstance(batch, nn.BatchNorm2d) and batch.affine and batch.track_running_stats
    assert n_params(batch) == 16


def test_unconditional_instance_patchgan_has_the_official_count():
    assert patchgan_count(3, 64) == 2_764_737  # the official CycleGAN D_A / D_B (2.765 M)
    net = PatchGANDiscriminator(3, condition_channels=0, ndf=64, n_layers=3, norm="instance")
    assert n_params(net) == 2_764_737
    assert net.receptive_field == 70
    assert net.net[0].in_channels == 3
    assert all(m.bias is not None for m in net.modules() if isinstance(m, nn.Conv2d))


def test_unconditional_patchgan_outputs_a_patch_grid_per_image():
    net = PatchGANDiscriminator(3, ndf=8, n_layers=3, norm="instance", image_size=256)
    assert net(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    small = PatchGANDiscriminator(1, ndf=8, n_layers=3, norm="instance", image_size=32).train()
    x = torch.randn(3, 1, 32, 32)
    out = small(x)
    assert out.shape == (3, 1, output_size(32, 3), output_size(32, 3)) == (3, 1, 2, 2)
    # Instance norm judges each image on its own, even in training mode (batch norm would not).
    torch.testing.assert_close(out[:1], small(x[:1]))
    batch = PatchGANDiscriminator(1, ndf=8, n_layers=3, norm="batch").train()
    assert not torch.allclose(batch(x)[:1], batch(x[:1]))
