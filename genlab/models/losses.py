"""GAN losses as swappable objects: each computes the discriminator's and the generator's loss.

The discriminator ``d`` is called as ``d(images, labels)`` and returns logits; ``labels`` is whatever
conditions D (class labels for the cGAN, the input images A for pix2pix, None). Every loss also
says how to read a discriminator output as "how real does D find this" (``score``), which the GAN
module logs as ``train/d_real`` / ``train/d_fake``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

Discriminator = Callable[[Tensor, Tensor | None], Tensor]


class GANLoss:
    """Base class: ``discriminator_loss`` and ``generator_loss`` return ``(loss, d_output)``.

    ``name`` is the loss's option in messages (``model/loss=<name>``).
    """

    name: ClassVar[str] = ""

    def discriminator_loss(
        self, d: Discriminator, real: Tensor, fake: Tensor, labels: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(loss, D output on real, D output on fake) for one discriminator update."""
        raise NotImplementedError

    def generator_loss(self, d: Discriminator, fake: Tensor, labels: Tensor | None) -> tuple[Tensor, Tensor]:
        """(loss, D output on fake) for one generator update."""
        raise NotImplementedError

    def d_outputs(self, num_classes: int) -> int:
        """Logits per image this loss expects from the discriminator."""
        return 1

    def score(self, output: Tensor) -> Tensor:
        """Mean "realness" of a batch of D outputs (a probability unless the loss says otherwise)."""
        return torch.sigmoid(output).mean()

    def realness(self, output: Tensor) -> Tensor | None:
        """D's verdict per image (or patch) as a number whose sign says real (> 0) or fake (< 0), the
        quantity of ADA's overfitting heuristic r_t = E[sign(·)] on real images; None where the loss
        gives the sign no meaning (a WGAN critic). Default: the output is a real/fake logit."""
        return output


class BCELoss(GANLoss):
    """The standard GAN loss with the non-saturating generator loss: G maximises log D(G(z))."""

    name = "bce"

    def discriminator_loss(self, d, real, fake, labels):
        out_real, out_fake = d(real, labels), d(fake, labels)
        loss = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
        loss = loss + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        return loss, out_real, out_fake

    def generator_loss(self, d, fake, labels):
        out_fake = d(fake, labels)
        return F.binary_cross_entropy_with_logits(out_fake, torch.ones_like(out_fake)), out_fake


class LSGANLoss(GANLoss):
    """Least-squares GAN loss (Mao et al., 2017) with targets 1 (real) and 0 (fake), as in the
    pix2pix/CycleGAN code: D minimises E[(D(x) − 1)²] + E[D(G(z))²], G minimises E[(D(G(z)) − 1)²]
    (the paper's objective without its factors ½). ``score`` is the mean raw output (not a probability);
    ``realness`` is the output minus ½, the midpoint of the two targets.
    """

    name = "lsgan"

    def discriminator_loss(self, d, real, fake, labels):
        out_real, out_fake = d(real, labels), d(fake, labels)
        loss = F.mse_loss(out_real, torch.ones_like(out_real)) + F.mse_loss(out_fake, torch.zeros_like(out_fake))
        return loss, out_real, out_fake

    def generator_loss(self, d, fake, labels):
        out_fake = d(fake, labels)
        return F.mse_loss(out_fake, torch.ones_like(out_fake)), out_fake

    def score(self, output: Tensor) -> Tensor:
        return output.mean()

    def realness(self, output: Tensor) -> Tensor:
        return output - 0.5


class WGANGPLoss(GANLoss):
    """Wasserstein loss with gradient penalty (Gulrajani et al., 2017).

    Critic: E[D(fake)] − E[D(real)] + λ·E[(‖∇D(x̂)‖₂ − 1)²] on random interpolates x̂; generator:
    −E[D(G(z))]. ``score`` is the mean raw critic value (not a probability). The critic's value has
    no fixed zero (adding a constant changes neither loss), so its sign means nothing: ``realness`` is None.
    """

    name = "wgan_gp"

    def __init__(self, gp_weight: float = 10.0) -> None:
        self.gp_weight = gp_weight

    def gradient_penalty(self, d: Discriminator, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
        alpha = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        out = d(mixed, labels)
        (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
        return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()

    def discriminator_loss(self, d, real, fake, labels):
        out_real, out_fake = d(real, labels), d(fake, labels)
        loss = out_fake.mean() - out_real.mean() + self.gp_weight * self.gradient_penalty(d, real, fake, labels)
        return loss, out_real, out_fake

    def generator_loss(self, d, fake, labels):
        out_fake = d(fake, labels)
        return -out_fake.mean(), out_fake

    def score(self, output: Tensor) -> Tensor:
        return output.mean()

    def realness(self, output: Tensor) -> None:
        return None


class HingeLoss(GANLoss):
    """Hinge loss (Lim & Ye, 2017; Miyato et al., 2018), the SN-GAN / BigGAN / StudioGAN default.

    D minimises E[relu(1 − D(x))] + E[relu(1 + D(G(z)))]; G minimises −E[D(G(z))]. ``score`` is
    the mean raw output (not a probability): D aims at ≥ 1 on real, ≤ −1 on fake.
    """

    name = "hinge"

    def discriminator_loss(self, d, real, fake, labels):
        out_real, out_fake = d(real, labels), d(fake, labels)
        loss = F.relu(1 - out_real).mean() + F.relu(1 + out_fake).mean()
        return loss, out_real, out_fake

    def generator_loss(self, d, fake, labels):
        out_fake = d(fake, labels)
        return -out_fake.mean(), out_fake

    def score(self, output: Tensor) -> Tensor:
        return output.mean()


class MulticlassLoss(GANLoss):
    """The K+1-way discriminator: real images → their class, fakes → class K ("fake").

    The generator is trained to have G(z, y) classified as class y. ``score`` is 1 − p(fake);
    ``realness`` is the log-odds of "real" against "fake", log Σ_k exp(l_k) − l_fake (> 0 exactly
    when p(fake) < ½).
    """

    name = "multiclass"

    def d_outputs(self, num_classes: int) -> int:
        return num_classes + 1

    def discriminator_loss(self, d, real, fake, labels):
        out_real, out_fake = d(real, labels), d(fake, labels)
        fake_class = torch.full_like(labels, out_fake.shape[1] - 1)
        loss = F.cross_entropy(out_real, labels) + F.cross_entropy(out_fake, fake_class)
        return loss, out_real, out_fake

    def generator_loss(self, d, fake, labels):
        out_fake = d(fake, labels)
        return F.cross_entropy(out_fake, labels), out_fake

    def score(self, output: Tensor) -> Tensor:
        return 1 - output.softmax(dim=1)[:, -1].mean()

    def realness(self, output: Tensor) -> Tensor:
        return output[:, :-1].logsumexp(dim=1) - output[:, -1]
