"""The pix2pix U-Net generator (Isola et al. 2017), structured as the official implementation.

Encoder block k (k = 1..depth) is a stride-2 4×4 convolution, BatchNorm (not in the first
block) and LeakyReLU(0.2); the last block, the bottleneck, is the convolution alone. Decoder
block k is a ReLU, a stride-2 4×4 transposed convolution, BatchNorm and (in the three blocks
next to the bottleneck) dropout 0.5; its input is the previous decoder output concatenated with
the mirrored encoder output (skip connection). The outermost decoder block ends with Tanh.
Convolutions followed by BatchNorm have no bias; as in the official code, neither has the first.

Feature maps after each encoder block for a 256×256 input with ngf=64 (``unet_256``, depth 8)::

    input      3 × 256 × 256
    block 1   64 × 128 × 128
    block 2  128 ×  64 ×  64
    block 3  256 ×  32 ×  32
    block 4  512 ×  16 ×  16
    block 5  512 ×   8 ×   8
    block 6  512 ×   4 ×   4
    block 7  512 ×   2 ×   2
    block 8  512 ×   1 ×   1   (bottleneck)

The decoder mirrors them: 512×2×2 → 512×4×4 → 512×8×8 → 512×16×16 → 256×32×32 → 128×64×64 →
64×128×128 → 3×256×256, each (but the last) concatenated with the encoder map of the same size.
With 3→3 channels, ngf=64 and batch norm it has 54,413,955 parameters, as the official unet_256.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from genlab.errors import GenlabError

MIN_DEPTH = 5
DROPOUT_BLOCKS = 3


def auto_depth(image_size: int) -> int:
    """Down-samplings for ``image_size``: log2 of it for powers of two (256 → 8, 128 → 7, 32 → 5),
    else the largest ``d`` with ``image_size`` divisible by ``2**d``."""
    depth = 0
    while image_size % 2 ** (depth + 1) == 0:
        depth += 1
    return depth


def norm_layer(norm: str, channels: int) -> nn.Module:
    """BatchNorm2d (affine, running statistics) or InstanceNorm2d (no affine parameters and no running
    statistics: each image is normalized by its own mean and variance), as in the official code."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    raise GenlabError(
        f"norm={norm} is not a normalization of the U-Net, ResNet or PatchGAN nets: use batch or instance."
    )


class UNetGenerator(nn.Module):
    """pix2pix U-Net: ``in_channels`` → ``out_channels`` images of ``image_size``, output in [-1, 1].

    Args:
        in_channels: channels of the input image A.
        out_channels: channels of the generated image B.
        image_size: side of the (square) images; must be divisible by ``2**depth``.
        ngf: filters of the first encoder block; block k has ``ngf * min(2**(k-1), 8)``.
        depth: number of down-samplings (null: from ``image_size``, 8 for 256, 5 for 32); at least 5.
        norm: ``batch`` or ``instance``.
        dropout: dropout probability of the three decoder blocks next to the bottleneck.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        image_size: int = 256,
        ngf: int = 64,
        depth: int | None = None,
        norm: str = "batch",
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        depth = auto_depth(image_size) if depth is None else depth
        if depth < MIN_DEPTH:
            raise GenlabError(
                f"image_size={image_size} gives the U-Net only {depth} down-samplings (it needs at least "
                f"{MIN_DEPTH}): use an image size divisible by 2^{MIN_DEPTH}=32 (32, 64, 128, 256, ...)."
            )
        if image_size % 2**depth:
            raise GenlabError(
                f"image_size={image_size} is not divisible by 2^depth=2^{depth}={2**depth}: pick an image size "
                f"that is a multiple of {2**depth}, or a smaller model.generator.depth."
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.image_size = image_size
        self.depth = depth
        use_bias = norm == "instance"
        widths = [ngf * min(2**k, 8) for k in range(depth)]

        self.encoder = nn.ModuleList()
        for k in range(depth):
            layers: list[nn.Module] = [
                nn.Conv2d(in_channels if k == 0 else widths[k - 1], widths[k], 4, 2, 1, bias=use_bias)
            ]
            if 0 < k < depth - 1:
                layers += [norm_layer(norm, widths[k]), nn.LeakyReLU(0.2)]
            elif k == 0:
                layers.append(nn.LeakyReLU(0.2))
            self.encoder.append(nn.Sequential(*layers))

        # decoder[k] maps level k+1's features (concatenated with the skip, except at the bottleneck)
        # back to the size of level k; decoder[0] produces the image.
        self.decoder = nn.ModuleList()
        for k in range(depth):
            in_width = widths[k] if k == depth - 1 else 2 * widths[k]
            if k == 0:
                layers = [nn.ReLU(), nn.ConvTranspose2d(in_width, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                layers = [
                    nn.ReLU(),
                    nn.ConvTranspose2d(in_width, widths[k - 1], 4, 2, 1, bias=use_bias),
                    norm_layer(norm, widths[k - 1]),
                ]
                if depth - 1 - DROPOUT_BLOCKS <= k < depth - 1 and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.decoder.append(nn.Sequential(*layers))

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, S, S) in [-1, 1] → (N, out_channels, S, S) in [-1, 1]."""
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = self.decoder[-1](skips[-1])
        for k in range(self.depth - 2, -1, -1):
            x = self.decoder[k](torch.cat([skips[k], x], dim=1))
        return x
