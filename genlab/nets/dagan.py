"""The generator of DAGAN (Antoniou et al. 2017): a U-Net that takes a real image x and noise z and
returns a new image meant to be of x's class, without being told the class.

The encoder is pix2pix's (stride-2 4×4 convolutions, BatchNorm but in the first block, LeakyReLU
0.2) down to ``bottom`` pixels; z enters every decoder level as ``noise_channels`` maps projected from
it (DAGAN feeds noise to several decoder layers so that it cannot be ignored), concatenated with the
level's skip connection. State sizes for 16×16 grey digits, ngf=32, depth=3, noise_channels=8::

    x            1 × 16 × 16
    enc 1       32 ×  8 ×  8
    enc 2       64 ×  4 ×  4
    enc 3      128 ×  2 ×  2   + z maps 8 × 2 × 2 → dec 3 → 64 × 4 × 4
    dec 2   (64 + 64 + 8) × 4 × 4 → 32 × 8 × 8
    dec 1   (32 + 32 + 8) × 8 × 8 → 1 × 16 × 16, Tanh
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genlab.errors import GenlabError


class DAGANGenerator(nn.Module):
    """x_g = G(x, z): images (N, C, S, S) in [-1, 1] and noise (N, nz) → images of the same shape in [-1, 1].

    Args:
        channels: image channels.
        image_size: side of the square images; divisible by ``2**depth``.
        ngf: filters of the first encoder block; block k has ``ngf * min(2**k, 8)``.
        nz: size of the noise vector z.
        depth: down-samplings (null: halve while the side stays even and ≥ 2 pixels: 16 → 3, 28 → 2).
        noise_channels: maps projected from z at each decoder level.
        dropout: dropout in the decoder blocks (0: z is the only randomness).
    """

    def __init__(
        self,
        channels: int = 1,
        image_size: int = 16,
        ngf: int = 32,
        nz: int = 32,
        depth: int | None = None,
        noise_channels: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth is None:  # halve while the side stays even and at least 2 pixels
            depth = 0
            while image_size % 2 ** (depth + 1) == 0 and image_size // 2 ** (depth + 1) >= 2:
                depth += 1
        if depth < 1 or image_size % 2**depth:
            raise GenlabError(
                f"model.generator.depth={depth} does not fit image_size={image_size}: the image side must be "
                f"divisible by 2^depth (use a smaller depth)."
            )
        if nz < 1 or noise_channels < 1:
            raise GenlabError("model.generator.nz and model.generator.noise_channels must be at least 1.")
        self.nz, self.depth, self.image_size, self.channels = nz, depth, image_size, channels
        self.noise_channels = noise_channels
        widths = [ngf * min(2**k, 8) for k in range(depth)]
        self.sizes = [image_size // 2 ** (k + 1) for k in range(depth)]
        self.encoder = nn.ModuleList()
        for k in range(depth):
            layers: list[nn.Module] = [nn.Conv2d(channels if k == 0 else widths[k - 1], widths[k], 4, 2, 1)]
            if k > 0:
                layers.append(nn.BatchNorm2d(widths[k]))
            layers.append(nn.LeakyReLU(0.2))
            self.encoder.append(nn.Sequential(*layers))
        self.noise = nn.ModuleList(nn.Linear(nz, noise_channels * size * size) for size in self.sizes)
        # decoder[k] turns level k (its skip, the level below's output, z maps) into level k − 1's size.
        self.decoder = nn.ModuleList()
        for k in range(depth):
            width_in = widths[k] + noise_channels + (0 if k == depth - 1 else widths[k])
            if k == 0:
                layers = [nn.ReLU(), nn.ConvTranspose2d(width_in, channels, 4, 2, 1), nn.Tanh()]
            else:
                up = nn.ConvTranspose2d(width_in, widths[k - 1], 4, 2, 1)
                layers = [nn.ReLU(), up, nn.BatchNorm2d(widths[k - 1])]
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.decoder.append(nn.Sequential(*layers))

    def noise_maps(self, z: Tensor, level: int) -> Tensor:
        """z projected to ``noise_channels`` maps of decoder level ``level``'s size."""
        size = self.sizes[level]
        return self.noise[level](z).view(len(z), self.noise_channels, size, size)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        h = self.decoder[-1](torch.cat([skips[-1], self.noise_maps(z, self.depth - 1)], 1))
        for k in range(self.depth - 2, -1, -1):
            h = self.decoder[k](torch.cat([skips[k], h, self.noise_maps(z, k)], 1))
        return h
