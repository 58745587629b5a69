"""GAN networks: the tutorial's parameter counts, output shapes and ranges, heads, bad sizes."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import GenlabError
from genlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from genlab.nets.gan_heads import MulticlassHead, RealFakeHead
from genlab.nets.mlp_gan import MLPDiscriminator, MLPGenerator


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_dcgan_has_the_tutorials_parameter_counts():
    assert count(DCGANGenerator(nz=100, ngf=64, channels=3, image_size=64)) == 3_576_704
    assert count(DCGANDiscriminator(ndf=64, channels=3, image_size=64)) == 2_765_568


def test_dcgan_init_is_normal_0_002():
    g = DCGANGenerator(nz=100, ngf=64, channels=3, image_size=64)
    weight = g.net[3].weight  # a ConvTranspose2d in the middle
    assert abs(weight.mean().item()) < 1e-3
    assert weight.std().item() == pytest.approx(0.02, rel=0.05)


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_nets_produce_and_judge_images_of_the_data_size(size, channels):
    z = torch.randn(3, 16)
    for g, d in (
        (MLPGenerator(16, channels, size, hidden=(32,)), MLPDiscriminator(channels, size, hidden=(32,))),
        (DCGANGenerator(16, 8, channels, size), DCGANDiscriminator(8, channels, size)),
    ):
        images = g(z)
        assert images.shape == (3, channels, size, size)
        assert images.min() >= -1 and images.max() <= 1
        logits = d(images)
        assert logits.shape == (3,)


def test_conditional_generator_and_heads():
    labels = torch.tensor([0, 3, 9])
    for g in (MLPGenerator(16, 1, 32, hidden=(32,), num_classes=10), DCGANGenerator(16, 8, 1, 32, num_classes=10)):
        images = g(torch.randn(3, 16), labels)
        assert images.shape == (3, 1, 32, 32)
        # The label changes the output for the same noise.
        z = torch.randn(1, 16).repeat(2, 1)
        g.eval()
        pair = g(z, torch.tensor([1, 2]))
        assert not torch.allclose(pair[0], pair[1])
    projection = DCGANDiscriminator(8, 1, 32, head=lambda f: RealFakeHead(f, num_classes=10))
    assert projection(images, labels).shape == (3,)
    multiclass = DCGANDiscriminator(8, 1, 32, head=lambda f: MulticlassHead(f, num_classes=10))
    assert multiclass(images, labels).shape == (3, 11)


@pytest.mark.parametrize("size", [28, 40, 4])
def test_dcgan_refuses_sizes_it_cannot_produce(size):
    with pytest.raises(GenlabError, match=f"image_size={size}"):
        DCGANGenerator(image_size=size)
