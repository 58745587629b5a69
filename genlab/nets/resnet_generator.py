"""The ResNet generator of CycleGAN (Zhu et al. 2017), structured as the official ``ResnetGenerator``.

Johnson et al.'s (2016) style-transfer network: ``c7s1-ngf, d2ngf, d4ngf, R4ngf × n_blocks, u2ngf,
ungf, c7s1-out``, where c7s1-k is a reflection-padded 7×7 convolution with k filters, norm and ReLU,
dk a stride-2 3×3 convolution, norm, ReLU, Rk a residual block of two reflection-padded 3×3
convolutions (norm after each, ReLU between them, optional dropout before the second), and uk a
stride-2 3×3 transposed convolution, norm, ReLU. The last convolution ends with Tanh instead.
Instance norm has no affine parameters, so every convolution keeps its bias (with batch norm only
the last one has a bias, as in the official code).

State sizes for a 256×256 input with ngf=64 (``resnet_9blocks``)::

    input                    3 × 256 × 256
    pad 3, conv 7×7         64 × 256 × 256   norm, ReLU
    conv 3×3 s2            128 × 128 × 128   norm, ReLU
    conv 3×3 s2            256 ×  64 ×  64   norm, ReLU
    9 residual blocks      256 ×  64 ×  64   x + (pad 1, conv 3×3, norm, ReLU, pad 1, conv 3×3, norm)(x)
    conv-transpose s2      128 × 128 × 128   norm, ReLU
    conv-transpose s2       64 × 256 × 256   norm, ReLU
    pad 3, conv 7×7          3 × 256 × 256   Tanh

With 3→3 channels, ngf=64 and instance norm it has 11,378,179 parameters (9 blocks; the official
count) or 7,837,699 (6 blocks).
"""

from __future__ import annotations

from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.nets.unet import norm_layer

DOWNSAMPLINGS = 2
SMALL_IMAGES = 128  # image_size up to this: 6 residual blocks (official resnet_6blocks), else 9
MIN_IMAGE_SIZE = 8  # the reflection padding of the residual blocks needs a 2×2 bottleneck at least


def auto_blocks(image_size: int) -> int:
    """Residual blocks for ``image_size`` as in the paper: 6 up to 128 px, 9 above."""
    return 6 if image_size <= SMALL_IMAGES else 9


class ResidualBlock(nn.Module):
    """``x + F(x)`` with F = pad 1, conv 3×3, norm, ReLU, [dropout], pad 1, conv 3×3, norm."""

    def __init__(self, width: int, norm: str, use_bias: bool, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3, bias=use_bias),
            norm_layer(norm, width),
            nn.ReLU(),
        ]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=use_bias), norm_layer(norm, width)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet generator: ``in_channels`` → ``out_channels`` images of ``image_size``, in [-1, 1].

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the generated image.
        image_size: side of the (square) images; a multiple of 4 (two down-samplings), at least 8.
        ngf: filters of the first convolution; the residual blocks have ``4 * ngf``.
        n_blocks: residual blocks (null: 6 for ``image_size`` ≤ 128, 9 above, as in the paper).
        norm: ``instance`` (CycleGAN, not affine) or ``batch``.
        dropout: dropout probability inside each residual block (the official ``--no_dropout`` is 0).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        image_size: int = 256,
        ngf: int = 64,
        n_blocks: int | None = None,
        norm: str = "instance",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if image_size % 2**DOWNSAMPLINGS or image_size < MIN_IMAGE_SIZE:
            raise GenlabError(
                f"image_size={image_size} does not suit the ResNet generator: its two stride-2 down-samplings "
                f"need a multiple of 4 of at least {MIN_IMAGE_SIZE} (32, 64, 128, 256, ...). Resize the data "
                "(data.image_size) or use the U-Net generator."
            )
        n_blocks = auto_blocks(image_size) if n_blocks is None else n_blocks
        if n_blocks < 0:
            raise GenlabError(f"n_blocks={n_blocks} must be >= 0 (null: 6 up to 128 px, 9 above).")
        if not 0 <= dropout < 1:
            raise GenlabError(f"dropout={dropout} must lie in [0, 1).")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.image_size = image_size
        self.n_blocks = n_blocks
        use_bias = norm == "instance"

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7, bias=use_bias),
            norm_layer(norm, ngf),
            nn.ReLU(),
        ]
        width = ngf
        for _ in range(DOWNSAMPLINGS):
            layers += [
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=use_bias),
                norm_layer(norm, 2 * width),
                nn.ReLU(),
            ]
            width *= 2
        layers += [ResidualBlock(width, norm, use_bias, dropout) for _ in range(n_blocks)]
        for _ in range(DOWNSAMPLINGS):
            layers += [
                nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias),
                norm_layer(norm, width // 2),
                nn.ReLU(),
            ]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, S, S) in [-1, 1] → (N, out_channels, S, S) in [-1, 1]."""
        return self.net(x)
