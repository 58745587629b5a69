"""The VAE's evidence lower bound (Kingma & Welling, 2014) as small pure functions.

For an image x, encoder q(z|x) = N(μ, diag σ²) and decoder p(x|z):

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) ‖ N(0, I)),

estimated with one reparameterised sample z = μ + σ·ε. Training minimises
``recon + β·w·kl`` with recon = -log p(x|z) and kl in nats per image, β the β-VAE weight
(Higgins et al., 2017) and w the KL warm-up weight (Bowman et al., 2016; Sønderby et al., 2016),
which ramps from 0 to 1. At β = w = 1 the loss is the negative ELBO.

Images are genlab's [-1, 1]. Likelihoods, per pixel:

- ``bernoulli``: p(x|z) = Bernoulli(sigmoid(logits)) of the [0, 1] intensity (x + 1) / 2; the
  decoder returns logits (``DCGANGenerator(..., logits=True)``). On grey-level images this is the
  usual cross-entropy loss, not a normalised density of continuous pixels.
- ``gaussian``: p(x|z) = N(mean, σ²) on the [-1, 1] pixel with the decoder's Tanh output as mean
  and a fixed, shared σ (a config value, not learned): σ sets how much reconstruction weighs
  against the KL term (a smaller σ = a sharper reconstruction and a weaker prior fit).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from genlab.errors import GenlabError

LIKELIHOODS = ("bernoulli", "gaussian")
DEFAULT_SIGMA = 0.1


def check_elbo_options(likelihood: str, beta: float, sigma: float = DEFAULT_SIGMA, kl_warmup_steps: int = 0) -> None:
    """Raise a GenlabError naming the option for a bad likelihood, β < 0, σ ≤ 0 or a negative warm-up."""
    if likelihood not in LIKELIHOODS:
        raise GenlabError(
            f"model.likelihood={likelihood!r} is not a VAE likelihood: choose one of {'|'.join(LIKELIHOODS)} "
            "(bernoulli for digit-like images, gaussian for photos)."
        )
    if beta < 0:
        raise GenlabError(f"model.beta={beta} must be >= 0: it weighs the KL term (1 = the plain VAE).")
    if sigma <= 0:
        raise GenlabError(f"model.sigma={sigma} must be > 0: it is the Gaussian likelihood's pixel std in [-1, 1].")
    if kl_warmup_steps < 0:
        raise GenlabError(f"model.kl_warmup_steps={kl_warmup_steps} must be >= 0 (0 = no warm-up).")


def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """z = μ + σ·ε with σ = exp(log σ² / 2), ε ~ N(0, I): a sample of q(z|x) that gradients flow through."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, diag σ²) ‖ N(0, I)) per image (N,): ½ Σ (μ² + σ² - 1 - log σ²), in nats."""
    return 0.5 * (mu.square() + logvar.exp() - 1 - logvar).flatten(1).sum(1)


def bernoulli_nll(logits: Tensor, x01: Tensor) -> Tensor:
    """-log Bernoulli(x01; sigmoid(logits)) summed over pixels, per image (N,); targets in [0, 1]."""
    if x01.min() < 0 or x01.max() > 1:
        raise ValueError("bernoulli_nll needs targets in [0, 1]: convert [-1, 1] images with (x + 1) / 2")
    return F.binary_cross_entropy_with_logits(logits, x01, reduction="none").flatten(1).sum(1)


def gaussian_nll(mean: Tensor, x: Tensor, sigma: float = DEFAULT_SIGMA) -> Tensor:
    """-log N(x; mean, σ²) summed over pixels, per image (N,): Σ (x - mean)² / 2σ² + log(σ√(2π))."""
    per_pixel = (x - mean).square() / (2 * sigma**2) + math.log(sigma * math.sqrt(2 * math.pi))
    return per_pixel.flatten(1).sum(1)


def kl_weight(step: int, warmup_steps: int) -> float:
    """KL warm-up: w = step / warmup_steps, rising linearly from 0 and held at 1 from ``warmup_steps`` on."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, max(step, 0) / warmup_steps)


def elbo(
    x: Tensor,
    decoded: Tensor,
    mu: Tensor,
    logvar: Tensor,
    likelihood: str = "bernoulli",
    beta: float = 1.0,
    kl_scale: float = 1.0,
    sigma: float = DEFAULT_SIGMA,
) -> tuple[Tensor, Tensor, Tensor]:
    """(loss, recon, kl), batch means of per-image nats: loss = recon + β·kl_scale·kl.

    Args:
        x: the images in [-1, 1].
        decoded: the decoder's output for z = reparameterize(mu, logvar): Bernoulli logits of the
            [0, 1] pixels for ``bernoulli``, the [-1, 1] mean for ``gaussian``.
        mu, logvar: the encoder's q(z|x).
        likelihood: ``bernoulli`` or ``gaussian``.
        beta: β of the β-VAE (1 = the plain VAE).
        kl_scale: the warm-up weight :func:`kl_weight` of this step.
        sigma: the Gaussian likelihood's pixel standard deviation (unused by ``bernoulli``).

    The ELBO itself (for ``val/elbo``) is ``-(recon + kl)``, whatever β and the warm-up.
    """
    check_elbo_options(likelihood, beta, sigma)
    # Bernoulli targets are the [0, 1] intensities (x + 1) / 2; the Gaussian works on [-1, 1] directly.
    recon = bernoulli_nll(decoded, (x + 1) / 2) if likelihood == "bernoulli" else gaussian_nll(decoded, x, sigma)
    kl = gaussian_kl(mu, logvar)
    recon, kl = recon.mean(), kl.mean()
    return recon + beta * kl_scale * kl, recon, kl
