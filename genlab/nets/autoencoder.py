"""A small convolutional denoising autoencoder (Vincent et al., 2008) and the course's corruption.

The autoencoder is trained on pairs (``add_noise(x, noise_factor)``, ``x``) with MSE: it learns to
remove one level of Gaussian noise, the first step towards diffusion models (which iterate it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from genlab.errors import GenlabError


def check_noise_factor(noise_factor: float | Tensor) -> None:
    """Raise a GenlabError naming ``model.noise_factor`` if the factor (or any per-image factor) is < 0."""
    lowest = float(torch.as_tensor(noise_factor).min())
    if lowest < 0:
        raise GenlabError(
            f"model.noise_factor={lowest:g} must be >= 0: it is the standard deviation of the Gaussian noise "
            "added to images in [-1, 1] (0 = no noise; 0.1-0.5 are typical)."
        )


def add_noise(x: Tensor, noise_factor: float | Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The course's corruption ``x + noise_factor·ε``, ε ~ N(0, I), on genlab's [-1, 1] images (N, C, H, W).

    ``noise_factor`` is a float or one factor per image (N,), e.g. drawn from [0.1, 0.5] to train one
    DAE for a range of noise levels. It is the noise's standard deviation in units of the [-1, 1]
    range (the same picture in the course's [0, 1] range has half that standard deviation).

    The result is NOT clipped to [-1, 1], unlike the course's clip to [0, 1]: on digits most pixels
    sit at the end of the range (-1, the background), where clipping would cut half of every noise
    draw, leaving noise of mean ≈ 0.40·noise_factor and standard deviation ≈ 0.58·noise_factor there.
    Unclipped, the corruption is exactly the Gaussian that ``noise_factor`` names, and it is one step
    of the diffusion forward process that the DAE motivates.
    """
    check_noise_factor(noise_factor)
    factor = torch.as_tensor(noise_factor, dtype=x.dtype, device=x.device)
    if factor.ndim:
        factor = factor.view(-1, *[1] * (x.ndim - 1))
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + factor * noise


class DenoisingAutoencoder(nn.Module):
    """noisy image (N, C, S, S) → clean image (N, C, S, S) in [-1, 1].

    Encoder: one stride-2 3×3 conv + ReLU per width (S → S/2^len(widths)). Decoder: stride-2
    4×4 transposed convs + ReLU back through the widths in reverse, then a 3×3 conv to the image
    channels and Tanh.

    Args:
        channels, image_size: the images it denoises (image_size divisible by 2^len(widths)).
        widths: channels after each down-sampling.
    """

    def __init__(self, channels: int, image_size: int, widths: Sequence[int] = (32, 64)) -> None:
        super().__init__()
        widths = list(widths)
        if not widths or min(widths) < 1:
            raise GenlabError(f"model.net.widths={widths} needs at least one positive width, e.g. [32, 64].")
        factor = 2 ** len(widths)
        if image_size % factor:
            raise GenlabError(
                f"data.image_size={image_size} is not divisible by 2^{len(widths)}={factor}, the down-sampling of "
                f"model.net.widths={widths}: use fewer widths or an image size divisible by {factor}."
            )
        down: list[nn.Module] = []
        width = channels
        for w in widths:
            # state size (width) × 2s × 2s → (w) × s × s, down to (widths[-1]) × S/2^k × S/2^k
            down += [nn.Conv2d(width, w, 3, 2, 1), nn.ReLU(inplace=True)]
            width = w
        up: list[nn.Module] = []
        for w in [*widths[-2::-1], widths[0]]:
            # state size (width) × s/2 × s/2 → (w) × s × s, up to (widths[0]) × S × S
            up += [nn.ConvTranspose2d(width, w, 4, 2, 1), nn.ReLU(inplace=True)]
            width = w
        # state size (widths[0]) × S × S → (channels) × S × S
        up += [nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()]
        self.encoder = nn.Sequential(*down)
        self.decoder = nn.Sequential(*up)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))
