"""The VAE's Gaussian encoder q(z|x) (Kingma & Welling, 2014); the decoder is genlab's DCGAN generator.

The encoder is the DCGAN discriminator's trunk (:func:`genlab.nets.dcgan.dcgan_trunk`: stride-2
4×4 convs from ``image_size`` down to 4×4, depth from the image size) with two linear heads, μ and
log σ². The decoder p(x|z) is :class:`genlab.nets.dcgan.DCGANGenerator` with ``nz=latent_dim``, so a
VAE's decoder has exactly the shape of the DCGAN generator for the same data: it returns images in
[-1, 1] (Tanh, the mean of a Gaussian likelihood) or, with ``logits=True``, the Bernoulli logits of
the [0, 1] pixel intensities; its label embedding makes the conditional VAE's decoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.nets.dcgan import dcgan_init, dcgan_trunk


class ConvEncoder(nn.Module):
    """image (N, C, S, S) [+ labels (N,)] → (μ, log σ²), each (N, latent_dim).

    Conditional (``num_classes`` > 0, the CVAE of Sohn et al., 2015): the label is concatenated
    with the image as ``num_classes`` one-hot channels (constant S×S maps: 1 for the image's
    class, 0 elsewhere), so the first convolution sees image and label together.

    Args:
        channels, image_size: the images it encodes (image_size a power of two ≥ 8, as for DCGAN).
        latent_dim: size of z.
        ndf: width of the first block; widths double towards 4×4.
        num_classes: > 0 makes it conditional.
        batch_norm: BatchNorm after the inner convs, as in the DCGAN discriminator.
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        latent_dim: int,
        ndf: int = 64,
        num_classes: int = 0,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        if latent_dim < 1:
            raise GenlabError(f"model.latent_dim={latent_dim} must be at least 1 (e.g. 32 or 100).")
        self.num_classes = num_classes
        self.latent_dim = latent_dim
        # input (channels [+ num_classes one-hot maps]) × S × S → state size (ndf·2^(blocks-1)·16)
        self.trunk, features = dcgan_trunk(ndf, channels + num_classes, image_size, batch_norm)
        # state size (features) → latent_dim, once for μ and once for log σ²
        self.mu = nn.Linear(features, latent_dim)
        self.logvar = nn.Linear(features, latent_dim)
        self.apply(dcgan_init)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if self.num_classes > 0:
            if labels is None:
                raise ValueError("this encoder is conditional: pass labels")
            onehot = F.one_hot(labels, self.num_classes).to(x.dtype)
            x = torch.cat([x, onehot[:, :, None, None].expand(-1, -1, *x.shape[-2:])], dim=1)
        features = self.trunk(x)
        return self.mu(features), self.logvar(features)
