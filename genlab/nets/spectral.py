"""Spectral normalisation of a discriminator (Miyato et al., 2018) with torch's parametrizations.

Every Conv2d and Linear weight W is divided by its largest singular value σ(W), estimated by one
power iteration per training forward pass; a conv weight (out, in, k, k) is treated as the matrix
(out, in·k·k). The projection head's class embedding (K, F) is normalised too, as in SN-GAN's
projection discriminator (Miyato & Koyama, 2018) and StudioGAN.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.errors import GenlabError

NORMALISED = (nn.Conv2d, nn.Linear, nn.Embedding)


def check_spectral_norm(batch_norm: bool, head: nn.Module) -> None:
    """Refuse the combinations that defeat or cannot take spectral normalisation."""
    if batch_norm:
        raise GenlabError(
            "model.discriminator.spectral_norm=true with model.discriminator.batch_norm=true: BatchNorm after a "
            "spectrally normalised layer divides by the batch's standard deviation and undoes the Lipschitz bound "
            "that spectral norm gives (SN-GAN's discriminator has no BatchNorm); set "
            "model.discriminator.batch_norm=false."
        )
    if not any(isinstance(m, NORMALISED) for m in head.modules()):
        raise GenlabError(
            f"model.discriminator.spectral_norm=true: the head {type(head).__name__} has no Linear, Conv2d or "
            "Embedding layer to normalise; use model/head=realfake or model/head=multiclass, or turn spectral "
            "norm off."
        )


def spectral_normalise(module: nn.Module) -> None:
    """Parametrize, in place, the weight of every Conv2d, Linear and Embedding inside ``module``."""
    for child in list(module.modules()):
        if isinstance(child, NORMALISED):
            spectral_norm(child)
