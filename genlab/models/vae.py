"""The variational autoencoder (Kingma & Welling, 2014) and its conditional variant (Sohn et al., 2015).

Encoder q(z|x[, y]) = :class:`genlab.nets.vae.ConvEncoder`; decoder p(x|z[, y]) = genlab's DCGAN
generator with ``nz = latent_dim`` (so it has the DCGAN generator's shape for the data); loss = the
negative ELBO of :mod:`genlab.models.elbo` with β and KL warm-up. Samples come from the prior
N(0, I) that the KL term fits the posterior to, not from the run's ``noise_dist``; images are the
decoder's mean (the Bernoulli probabilities, or the Gaussian mean), in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.models.adversarial import eval_mode
from genlab.models.base import GenlabModule, OptimizerFactory, check_finite, check_image_data, make_optimizer
from genlab.models.elbo import DEFAULT_SIGMA, check_elbo_options, elbo, kl_weight, reparameterize
from genlab.noise.priors import GaussianNoise


class VAEModule(GenlabModule):
    """Trains encoder and decoder on ``recon + β·w·kl`` (w: the KL warm-up weight of the step).

    Logs ``train/loss``, ``train/recon`` and ``train/kl`` (nats per image), and on the validation split
    (one fixed posterior sample per image, β = w = 1) ``val/elbo``, ``val/recon``, ``val/kl``.
    Capabilities: Generates (conditionally when ``num_classes`` > 0), Interpolates, Encodes.

    Args:
        encoder: image [+ label] → (μ, log σ²) (``ConvEncoder``).
        decoder: z [+ label] → image (``DCGANGenerator``; ``decoder(z, y, logits=True)`` gives Bernoulli logits).
        optimizer: a partial optimizer called with all parameters.
        latent_dim: size of z (encoder and decoder interpolate it).
        likelihood: ``bernoulli`` (digit-like images) or ``gaussian`` (fixed pixel std ``sigma``).
        beta: weight of the KL term (β-VAE; 1 = the plain VAE).
        sigma: the Gaussian likelihood's pixel standard deviation in [-1, 1] units.
        kl_warmup_steps: steps over which the KL weight rises linearly from 0 to 1 (0 = none).
        num_classes: > 0 for the conditional VAE (labels go to encoder and decoder).
        require_labels: refuse a dataset without classes (set by ``model=cvae``).
        **meta: the model config's ``name``, ``epochs``, ``monitor``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        optimizer: OptimizerFactory,
        latent_dim: int,
        likelihood: str = "bernoulli",
        beta: float = 1.0,
        sigma: float = DEFAULT_SIGMA,
        kl_warmup_steps: int = 0,
        num_classes: int = 0,
        require_labels: bool = False,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        check_elbo_options(likelihood, beta, sigma, kl_warmup_steps)
        if require_labels and num_classes < 1:
            raise GenlabError(
                "model=cvae needs a labelled dataset, but the data config has num_classes=0: use a dataset with "
                "classes (digits, mnist, fashion_mnist, cifar10, image_folder with class folders) or model=vae."
            )
        if not encoder.latent_dim == decoder.nz == latent_dim or encoder.num_classes != num_classes:
            raise GenlabError(
                f"the VAE's encoder (latent_dim={encoder.latent_dim}, num_classes={encoder.num_classes}) and decoder "
                f"(nz={decoder.nz}) must share model.latent_dim and model.num_classes={num_classes}: keep the "
                "interpolations ${model.latent_dim} and ${model.num_classes} in model.encoder and model.decoder."
            )
        self.latent_dim = latent_dim
        self.encoder = encoder
        self.decoder = decoder
        self.optimizer_factory = optimizer
        self.likelihood = likelihood
        self.beta = float(beta)
        self.sigma = float(sigma)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.num_classes = num_classes
        self.prior = GaussianNoise()
        labels = torch.zeros(2, dtype=torch.long) if num_classes > 0 else None
        with torch.no_grad(), eval_mode(decoder):
            self.image_shape = tuple(decoder(torch.zeros(2, self.latent_dim), labels).shape[1:])

    def check_data(self, datamodule: Any) -> None:
        check_image_data(self.config_name, self.image_shape, self.num_classes, datamodule)

    # ----- generation (capabilities Generates, Interpolates, Encodes) ----------------------------

    def generation_options(self) -> Mapping[str, str]:
        return {}

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` latent vectors (n, latent_dim) from the prior N(0, I), on this module's device."""
        return self.prior.sample((n, self.latent_dim), generator=generator, device=self.device)

    def interpolate_latents(self, start: Tensor, end: Tensor, steps: int) -> Tensor:
        """``steps`` latents from ``start`` to ``end`` (slerp, the Gaussian prior's path)."""
        return self.prior.interpolate(start, end, steps)

    @torch.no_grad()
    def encode(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        """The posterior means μ (N, latent_dim) of images in [-1, 1] (eval mode)."""
        with eval_mode(self.encoder) as encoder:
            return encoder(images.to(self.device), self._labels(labels))[0]

    @torch.no_grad()
    def decode(self, latents: Tensor, labels: Tensor | None = None) -> Tensor:
        """The decoder's mean images in [-1, 1] for given latents (and labels when conditional)."""
        with eval_mode(self.decoder) as decoder:
            return decoder(latents.to(self.device), self._labels(labels))

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``n`` images in [-1, 1] decoded from prior samples."""
        return self.decode(self.sample_latent(n, generator), labels)

    def _labels(self, labels: Tensor | None) -> Tensor | None:
        if self.num_classes == 0:
            return None
        if labels is None or bool((labels < 0).any()):
            raise GenlabError("the conditional VAE needs a label for every image (this batch has unlabelled ones).")
        return labels.to(self.device)

    # ----- training ------------------------------------------------------------------------------

    def _elbo(
        self, images: Tensor, labels: Tensor, beta: float, kl_scale: float, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(loss, recon, kl) of a batch with one reparameterised posterior sample (see :func:`elbo`)."""
        labels = self._labels(labels)
        mu, logvar = self.encoder(images, labels)
        z = reparameterize(mu, logvar, generator)
        decoded = self.decoder(z, labels, logits=self.likelihood == "bernoulli")
        return elbo(images, decoded, mu, logvar, self.likelihood, beta, kl_scale, self.sigma)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        weight = kl_weight(self.global_step, self.kl_warmup_steps)
        loss, recon, kl = self._elbo(images, labels, self.beta, weight)
        check_finite(
            loss, "train/loss", self.global_step, self.current_epoch, "Try a lower learning rate (model.optimizer.lr)."
        )
        self.log_step({"train/loss": loss, "train/recon": recon, "train/kl": kl}, prog_bar=("train/loss",))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        generator = torch.Generator(images.device).manual_seed(batch_idx)
        _, recon, kl = self._elbo(images, labels, 1.0, 1.0, generator)
        self.log("val/elbo", -(recon + kl), prog_bar=True)
        self.log_dict({"val/recon": recon, "val/kl": kl})

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer_factory, self.parameters(), "optimizer")
