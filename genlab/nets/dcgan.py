"""DCGAN (Radford et al., 2016) as in the PyTorch tutorial, with depth derived from the image size.

At nz=100, ngf=ndf=64, 3 channels and 64×64 the nets are exactly the tutorial's (3,576,704 and
2,765,568 parameters). Each extra factor 2 of image size adds one up/down-sampling block.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.nets.gan_heads import RealFakeHead
from genlab.nets.spectral import check_spectral_norm, spectral_normalise


def num_blocks(image_size: int) -> int:
    """Stride-2 blocks between 4×4 and ``image_size`` (a power of two ≥ 8): 64 → 4."""
    if image_size < 8 or image_size & (image_size - 1):
        raise GenlabError(
            f"data.image_size={image_size} cannot be produced by DCGAN: it needs a power of two >= 8 "
            "(e.g. 32 or 64); set data.image_size=32 (28×28 datasets are resized) or use model=gan."
        )
    return int(math.log2(image_size)) - 2


def dcgan_init(module: nn.Module) -> None:
    """N(0, 0.02) for conv weights, N(1, 0.02) / 0 for BatchNorm, as in the paper."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def dcgan_trunk(ndf: int, channels: int, image_size: int, batch_norm: bool = True) -> tuple[nn.Sequential, int]:
    """The DCGAN discriminator's body: image (N, C, S, S) → flattened 4×4 features (N, F); returns (net, F).

    Strided 4×4 convs halve the size down to 4×4, widths double from ``ndf``; LeakyReLU(0.2),
    BatchNorm after the inner convs when ``batch_norm``. Shared by the discriminator and the VAE encoder.
    """
    blocks = num_blocks(image_size)
    # input (channels) × image_size × image_size → state size (ndf) × image_size/2 × image_size/2
    layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    width = ndf
    for _ in range(blocks - 1):
        # state size (width) × s × s → (2·width) × s/2 × s/2, down to (ndf·2^(blocks-1)) × 4 × 4
        layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False)]
        layers += [nn.BatchNorm2d(width * 2)] if batch_norm else []
        layers += [nn.LeakyReLU(0.2, inplace=True)]
        width *= 2
    layers += [nn.Flatten()]  # state size (ndf·2^(blocks-1)·16)
    return nn.Sequential(*layers), width * 16


class DCGANGenerator(nn.Module):
    """z (N, nz) → image (N, C, S, S) in [-1, 1]: transposed convs, BatchNorm, ReLU, Tanh.

    Args:
        nz: latent size.
        ngf: width of the last hidden block; widths double towards the 4×4 input.
        channels, image_size: the image it produces (image_size a power of two ≥ 8).
        num_classes: > 0 makes it conditional: a label embedding is concatenated with z.
        embed_dim: size of that label embedding.
    """

    def __init__(
        self,
        nz: int = 100,
        ngf: int = 64,
        channels: int = 3,
        image_size: int = 64,
        num_classes: int = 0,
        embed_dim: int = 50,
    ) -> None:
        super().__init__()
        blocks = num_blocks(image_size)
        self.nz = nz
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        width = ngf * 2 ** (blocks - 1)
        in_width = nz + (embed_dim if self.embed is not None else 0)
        # input (nz [+ embed_dim]) × 1 × 1 → state size (ngf·2^(blocks-1)) × 4 × 4
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_width, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        size = 4
        for _ in range(blocks - 1):
            size *= 2
            # state size (width) × size/2 × size/2 → (width/2) × size × size
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2)]
            layers += [nn.ReLU(True)]
            width //= 2
        # state size (ngf) × image_size/2 × image_size/2 → (channels) × image_size × image_size
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, z: Tensor, labels: Tensor | None = None, logits: bool = False) -> Tensor:
        """Images in [-1, 1]; with ``logits=True`` the Bernoulli logits of the [0, 1] pixel intensities.

        The last layer's pre-activation ``a`` gives both: ``tanh(a) = 2·sigmoid(2a) - 1``, so ``2a``
        are the logits of ``(image + 1) / 2`` (what a VAE's Bernoulli likelihood and
        ``BCEWithLogits`` need), with no second network.
        """
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        z = z[:, :, None, None]
        return 2 * self.net[:-1](z) if logits else self.net(z)


class DCGANDiscriminator(nn.Module):
    """image (N, C, S, S) → logits: strided convs, BatchNorm, LeakyReLU(0.2), then a head on the 4×4 features.

    The default head (one real/fake logit, no bias) on the flattened 4×4 features is the
    tutorial's final 4×4 convolution.

    Args:
        ndf: width of the first block; widths double towards 4×4.
        channels, image_size: the images it judges (image_size a power of two ≥ 8).
        batch_norm: BatchNorm after the inner convs (turned off for a WGAN-GP critic).
        head: ``head(in_features)`` builds the output head (default: one real/fake logit).
        spectral_norm: spectrally normalise every conv and the head's layers (genlab.nets.spectral);
            needs ``batch_norm=False``.
    """

    def __init__(
        self,
        ndf: int = 64,
        channels: int = 3,
        image_size: int = 64,
        batch_norm: bool = True,
        head: Callable[[int], nn.Module] | None = None,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.trunk, features = dcgan_trunk(ndf, channels, image_size, batch_norm)
        self.head = (head or RealFakeHead)(features)
        self.apply(dcgan_init)
        if spectral_norm:
            check_spectral_norm(batch_norm, self.head)
            spectral_normalise(self)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.head(self.trunk(x), labels)
