"""The vanilla GAN of the course: fully connected generator and discriminator (Goodfellow et al., 2014)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from genlab.nets.gan_heads import RealFakeHead
from genlab.nets.spectral import check_spectral_norm, spectral_normalise


class MLPGenerator(nn.Module):
    """z (N, nz) → image (N, C, H, W) in [-1, 1] through fully connected layers with ReLU.

    Args:
        nz: latent size.
        channels, image_size: the image it produces.
        hidden: widths of the hidden layers.
        batch_norm: BatchNorm1d after each hidden linear layer (steadier training).
        num_classes: > 0 makes it conditional: a label embedding is concatenated with z.
        embed_dim: size of that label embedding.
    """

    def __init__(
        self,
        nz: int = 100,
        channels: int = 1,
        image_size: int = 28,
        hidden: Sequence[int] = (256, 512, 1024),
        batch_norm: bool = True,
        num_classes: int = 0,
        embed_dim: int = 10,
    ) -> None:
        super().__init__()
        self.nz = nz
        self.out_shape = (channels, image_size, image_size)
        self.embed = nn.Embedding(num_classes, embed_dim) if num_classes > 0 else None
        layers: list[nn.Module] = []
        width = nz + (embed_dim if self.embed is not None else 0)
        for out in hidden:
            layers += [nn.Linear(width, out, bias=not batch_norm)]
            layers += [nn.BatchNorm1d(out)] if batch_norm else []
            layers += [nn.ReLU(inplace=True)]
            width = out
        layers += [nn.Linear(width, math.prod(self.out_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z).view(-1, *self.out_shape)


class MLPDiscriminator(nn.Module):
    """image (N, C, H, W) → logits through fully connected layers with LeakyReLU(0.2).

    Args:
        channels, image_size: the images it judges.
        hidden: widths of the hidden layers.
        dropout: dropout after each hidden layer.
        batch_norm: BatchNorm1d after each hidden linear layer (off by default; never for a WGAN-GP critic).
        head: ``head(in_features)`` builds the output head (default: one real/fake logit).
        spectral_norm: spectrally normalise every linear layer, the head's included (genlab.nets.spectral);
            needs ``batch_norm=False``.
    """

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 28,
        hidden: Sequence[int] = (512, 256),
        dropout: float = 0.0,
        batch_norm: bool = False,
        head: Callable[[int], nn.Module] | None = None,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = channels * image_size * image_size
        for out in hidden:
            layers += [nn.Linear(width, out)]
            layers += [nn.BatchNorm1d(out)] if batch_norm else []
            layers += [nn.LeakyReLU(0.2, inplace=True)]
            layers += [nn.Dropout(dropout)] if dropout > 0 else []
            width = out
        self.trunk = nn.Sequential(*layers)
        self.head = (head or RealFakeHead)(width)
        if spectral_norm:
            check_spectral_norm(batch_norm, self.head)
            spectral_normalise(self)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.head(self.trunk(x), labels)
