"""One GAN LightningModule for the whole family: vanilla GAN, DCGAN, cGAN, WGAN-GP.

Variants differ only in the objects they are built from (generator, discriminator, loss, latent
prior, number of classes), never in branches of the training loop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.models.adversarial import AdversarialModule, eval_mode, frozen
from genlab.models.base import OptimizerFactory, check_image_data, make_optimizer
from genlab.models.ema import make_ema, migrate_ema_state, sampling_choice
from genlab.models.losses import GANLoss
from genlab.noise.priors import NoiseDist

log = logging.getLogger("genlab")


def check_truncation(value: float | None) -> float:
    """A valid truncation threshold (> 0), or a clear error."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise GenlabError(f"truncation={value} must be a number > 0 (e.g. truncation=1.0), or left out.")
    return float(value)


class GANModule(AdversarialModule):
    """Adversarial training with manual optimization.

    Each batch makes one discriminator update; every ``n_critic``-th batch also makes one
    generator update. ``trainer.global_step`` (and so ``trainer.max_steps``) counts generator
    updates. Logs ``train/loss_d``, ``train/loss_g``, ``train/d_real`` and ``train/d_fake``
    (the loss's reading of D's output: a probability for BCE and the K+1 head, the raw critic
    value for WGAN-GP), ``train/r_t`` (mean sign of D's verdict on real images, ADA's overfitting
    heuristic; not for WGAN-GP) and, with ``model.diffaug``, ``train/aug_p``. With ``model.diffaug``
    real and fake images are DiffAugment'ed before D in the discriminator update, and the fakes in
    the generator update (gradients flow through the augmentation into G). A NaN or infinite loss
    raises :class:`TrainingDivergedError`.

    Args:
        generator: ``generator(z, labels) -> images in [-1, 1]``; has attribute ``nz``.
        discriminator: ``discriminator(images, labels) -> logits``.
        loss: a :class:`GANLoss` (BCE, WGAN-GP, multiclass, ...).
        prior: the latent distribution z is drawn from.
        optimizer_g, optimizer_d: partial optimizers called with the parameters.
        num_classes: > 0 for a class-conditional GAN (fakes use the real batch's labels).
        n_critic: discriminator updates per generator update.
        ema_decay: keep an exponential moving average of the generator (weights and BatchNorm
            statistics, see :mod:`genlab.models.ema`), used for samples and eval and saved in
            checkpoints; null to turn it off.
        ema_half_life_images: instead of ``ema_decay``, the EMA's half-life in training images (EDM's rule).
        require_labels: refuse a dataset without classes (set by conditional model configs).
        **options: the DiffAugment / ADA options and the meta keys of
            :class:`~genlab.models.adversarial.AdversarialModule`.
    """

    supports_diffaug = True

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        prior: NoiseDist,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        num_classes: int = 0,
        n_critic: int = 1,
        ema_decay: float | None = None,
        ema_half_life_images: int | None = None,
        require_labels: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if require_labels and num_classes < 1:
            raise GenlabError(
                "this conditional GAN needs a labelled dataset, but the data config has num_classes=0: "
                "use a dataset with classes (digits, mnist, fashion_mnist, cifar10, image_folder with class "
                "folders) or an unconditional model (model=dcgan)."
            )
        if isinstance(n_critic, bool) or not isinstance(n_critic, int) or n_critic < 1:
            raise GenlabError(f"model.n_critic={n_critic} must be an integer ≥ 1.")
        self.generator = generator
        self.discriminator = discriminator
        self.loss = loss
        self.prior = prior
        self.optimizer_g_factory = optimizer_g
        self.optimizer_d_factory = optimizer_d
        self.num_classes = num_classes
        self.n_critic = n_critic
        self.generator_ema = make_ema(generator, ema_decay, ema_half_life_images)
        self.d_updates = 0
        self.image_shape = self._check_compatible()

    @property
    def latent_dim(self) -> int:
        """Size of the latent vector z."""
        return self.generator.nz

    def _check_compatible(self) -> tuple[int, int, int]:
        """Fail early, with the option to change, when G, D and the loss do not fit together; return the image shape."""
        labels = torch.zeros(2, dtype=torch.long) if self.num_classes > 0 else None
        with torch.no_grad(), eval_mode(self.generator), eval_mode(self.discriminator):
            fake = self.generator(torch.zeros(2, self.latent_dim), labels)
            out = self.discriminator(fake, labels)
        wanted = self.loss.d_outputs(self.num_classes)
        have = out.shape[1] if out.ndim == 2 else 1
        if have != wanted:
            advice = (
                "model/loss=multiclass needs the K+1 head: model=cgan model/head=multiclass."
                if wanted > 1
                else f"the K+1 head (model/head=multiclass) goes with model/loss=multiclass only: use "
                f"model/head=realfake with model/loss={self.loss.name}."
            )
            raise GenlabError(
                f"model/loss={self.loss.name} expects {wanted} logit(s) per image but the discriminator returns "
                f"shape {tuple(out.shape)}: {advice}"
            )
        self.check_adaptive(self.loss.realness(out), self.loss.name)
        return tuple(fake.shape[1:])

    def check_data(self, datamodule: Any) -> None:
        check_image_data(self.config_name, self.image_shape, self.num_classes, datamodule)

    # ---- generation (capabilities Generates, Interpolates) ------------------------------------------

    def generation_options(self) -> Mapping[str, str]:
        options = {"truncation": "sample the prior truncated to [-t, t] per coordinate (the truncation trick)"}
        if self.generator_ema is not None:
            options["ema"] = "true (default): the averaged generator; false: the live one"
        return options

    def sampling_network(self, ema: bool | None = None) -> nn.Module:
        """The network used for samples and eval: the EMA generator when there is one (unless ``ema=false``)."""
        return sampling_choice(self.generator, self.generator_ema, ema)

    def sample_latent(
        self, n: int, generator: torch.Generator | None = None, truncation: float | None = None
    ) -> Tensor:
        """``n`` latent vectors (n, nz) from the prior (truncated when asked), on this module's device."""
        prior = self.prior.truncate(check_truncation(truncation)) if truncation is not None else self.prior
        return prior.sample((n, self.latent_dim), generator=generator, device=self.device)

    def interpolate_latents(self, start: Tensor, end: Tensor, steps: int) -> Tensor:
        """``steps`` latents from ``start`` to ``end`` along the prior's path (slerp for Gaussian)."""
        return self.prior.interpolate(start, end, steps)

    @torch.no_grad()
    def decode(self, latents: Tensor, labels: Tensor | None = None, ema: bool | None = None) -> Tensor:
        """Images in [-1, 1] from given latents (and labels for a conditional GAN)."""
        with eval_mode(self.sampling_network(ema)) as net:
            return net(latents.to(self.device), None if labels is None else labels.to(self.device))

    @torch.no_grad()
    def generate(
        self,
        n: int,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        truncation: float | None = None,
        ema: bool | None = None,
    ) -> Tensor:
        """``n`` images in [-1, 1] from fresh latents, optionally truncated."""
        return self.decode(self.sample_latent(n, generator, truncation), labels, ema)

    # ---- training ---------------------------------------------------------------------------------

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            make_optimizer(self.optimizer_g_factory, self.generator.parameters(), "optimizer_g"),
            make_optimizer(self.optimizer_d_factory, self.discriminator.parameters(), "optimizer_d"),
        ]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, batch_labels = batch
        labels = batch_labels if self.num_classes > 0 else None
        if labels is not None and bool((labels < 0).any()):
            raise GenlabError(
                "a conditional GAN needs labelled images, but this dataset's batch has unlabelled ones (-1)."
            )
        opt_g, opt_d = self.optimizers()
        generator_turn = (self.d_updates + 1) % self.n_critic == 0
        with torch.set_grad_enabled(generator_turn):
            fake = self.generator(self.sample_latent(real.shape[0]), labels)
        real_d, fake_d = self.augment(real), self.augment(fake.detach())
        loss_d, out_real, out_fake = self.loss.discriminator_loss(self.discriminator, real_d, fake_d, labels)
        self.discriminator_update(opt_d, loss_d)
        self.d_updates += 1
        scores = {"train/d_real": self.loss.score(out_real), "train/d_fake": self.loss.score(out_fake)}
        scores.update(self.observe_real(self.loss.realness(out_real)))
        self.log_step({"train/loss_d": loss_d, **scores}, prog_bar=("train/loss_d",))
        if not generator_turn:
            return
        with frozen(self.discriminator):
            loss_g, _ = self.loss.generator_loss(self.discriminator, self.augment(fake), labels)
        self.generator_update(opt_g, loss_g)
        if self.generator_ema is not None:
            self.generator_ema.update(self.generator, self.images_per_update(len(fake)))
        self.log_step({"train/loss_g": loss_g}, prog_bar=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["gan_updates"] = {"d": self.d_updates}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        updates = checkpoint.get("gan_updates", {})
        self.d_updates = int(updates.get("d", 0))
        migrate_ema_state(checkpoint["state_dict"], "generator_ema", int(updates.get("ema", 0)))
