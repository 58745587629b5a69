"""The PatchGAN discriminator of pix2pix and CycleGAN (the official ``NLayerDiscriminator``).

It classifies every overlapping patch of its input as real or fake and returns a grid of logits
(one per patch, no sigmoid). With ``n_layers=3`` each logit sees a 70×70 patch.

- pix2pix (conditional, batch norm): the input is ``concat(A, B)``, ``condition_channels`` = A's.
- CycleGAN (unconditional, ``condition_channels=0``, ``norm="instance"``): the input is the image
  alone; instance norm has no affine parameters, so the normalized convolutions keep their bias.

State sizes for a 256×256 input, ndf=64, n_layers=3 (pix2pix: 6 input channels; CycleGAN: 3)::

    concat(A, B) or B   6 or 3 × 256 × 256
    conv s2       64 × 128 × 128   LeakyReLU
    conv s2      128 ×  64 ×  64   norm, LeakyReLU
    conv s2      256 ×  32 ×  32   norm, LeakyReLU
    conv s1      512 ×  31 ×  31   norm, LeakyReLU
    conv s1        1 ×  30 ×  30   patch logits

Parameters: 2,768,705 (pix2pix, 6 channels, batch norm), 2,764,737 (CycleGAN, 3 channels, instance norm).
"""

from __future__ import annotations

from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.nets.unet import norm_layer

KERNEL = 4
PADDING = 1


def _strides(n_layers: int) -> list[int]:
    """Strides of the convolutions: ``n_layers`` of 2, then two of 1."""
    return [2] * n_layers + [1, 1]


def receptive_field(n_layers: int) -> int:
    """Side in pixels of the input patch that one output logit sees (3 → 70)."""
    if n_layers < 1:
        raise GenlabError(f"n_layers={n_layers} must be at least 1 (3 is the 70×70 PatchGAN).")
    field = 1
    for stride in reversed(_strides(n_layers)):
        field = (field - 1) * stride + KERNEL
    return field


def output_size(image_size: int, n_layers: int) -> int:
    """Side of the logit grid for a square input of ``image_size``."""
    size = image_size
    for stride in _strides(n_layers):
        size = (size + 2 * PADDING - KERNEL) // stride + 1
    return size


class PatchGANDiscriminator(nn.Module):
    """PatchGAN: ``D(concat(A, B))`` (conditional) or ``D(B)`` (unconditional) → logits (N, 1, P, P).

    Args:
        in_channels: channels of the image judged (B, real or generated).
        condition_channels: channels of the condition A concatenated in front of it (0: unconditional).
        ndf: filters of the first convolution; layer n has ``ndf * min(2**n, 8)``.
        n_layers: stride-2 convolutions (3: 70×70 patches, see :func:`receptive_field`).
        norm: ``batch`` (pix2pix) or ``instance`` (CycleGAN; not affine, the convolutions keep their bias).
        image_size: when given, checked to leave at least one patch.
    """

    def __init__(
        self,
        in_channels: int = 3,
        condition_channels: int = 0,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "batch",
        image_size: int | None = None,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise GenlabError(f"n_layers={n_layers} must be at least 1 (3 is the 70×70 PatchGAN).")
        if image_size is not None and output_size(image_size, n_layers) < 1:
            raise GenlabError(
                f"n_layers={n_layers} is too deep for image_size={image_size}: the PatchGAN would output no "
                "patch. Use fewer layers (model.discriminator.n_layers) or larger images."
            )
        self.n_layers = n_layers
        self.receptive_field = receptive_field(n_layers)
        use_bias = norm == "instance"
        total_in = in_channels + condition_channels
        layers: list[nn.Module] = [nn.Conv2d(total_in, ndf, KERNEL, 2, PADDING), nn.LeakyReLU(0.2)]
        width = ndf
        for n, stride in enumerate(_strides(n_layers)[1:-1], start=1):
            out = ndf * min(2**n, 8)
            layers += [
                nn.Conv2d(width, out, KERNEL, stride, PADDING, bias=use_bias),
                norm_layer(norm, out),
                nn.LeakyReLU(0.2),
            ]
            width = out
        layers.append(nn.Conv2d(width, 1, KERNEL, 1, PADDING))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``concat(A, B)`` or B alone (N, condition_channels + in_channels, S, S) → logits (N, 1, P, P)."""
        return self.net(x)
