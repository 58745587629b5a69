"""pix2pix (Isola et al. 2017): a U-Net generator G(A) trained against a conditional PatchGAN
D(A, B) with a cGAN loss plus λ·L1(G(A), B).

Batches are pairs ``(A, B)`` of float images in [-1, 1] (see :mod:`genlab.data.paired`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from pytorch_lightning import Callback
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MetricCollection

from genlab.callbacks.translation_grid import TranslationGridCallback
from genlab.data.paired import PAIRED_DATASETS, PairedDataModule
from genlab.errors import GenlabError
from genlab.imaging import to_unit_range
from genlab.metrics.translation import translation_metric_collection
from genlab.models.adversarial import AdversarialModule, decay_plan, frozen
from genlab.models.base import OptimizerFactory, make_optimizer
from genlab.models.losses import BCELoss, GANLoss, LSGANLoss

# model.gan_mode → the cGAN loss object (the official code's option names)
GAN_MODES: dict[str, type[GANLoss]] = {"vanilla": BCELoss, "lsgan": LSGANLoss}


class Pix2PixModule(AdversarialModule):
    """pix2pix with manual optimization: per batch one D step, then one G step (``max_steps`` counts G steps).

    Logs ``train/loss_d``, ``train/loss_g``, ``train/loss_g_gan``, ``train/loss_g_l1``,
    ``train/d_real``, ``train/d_fake``, ``train/r_t``, ``train/lr``, and L1 / PSNR / SSIM of G(A) against B
    (images in [0, 1]) as ``val/l1``, ``val/psnr``, ``val/ssim`` and ``test/...``. With ``model.diffaug``
    every pair D sees, (A, B) or (A, G(A)), is DiffAugment'ed with one draw for both images.

    Args:
        generator: image-to-image network A → B (``in_channels``, ``out_channels``, ``image_size``).
        discriminator: conditional PatchGAN on ``concat(A, B)``, returning logits.
        optimizer_g, optimizer_d: partial optimizers (``_partial_: true``).
        lambda_l1: weight of the L1 term (100 in the paper).
        gan_mode: the cGAN loss, ``vanilla`` (:class:`~genlab.models.losses.BCELoss`, BCE-with-logits)
            or ``lsgan`` (:class:`~genlab.models.losses.LSGANLoss`, least squares); D's loss is halved
            as in the paper.
        n_epochs: epochs at the initial learning rate (null: half of ``trainer.max_epochs``).
        n_epochs_decay: epochs of linear decay to 0 (null: the rest of ``trainer.max_epochs``).
        grid_size: validation triples written each epoch (0: none).
        **meta: the DiffAugment / ADA options and the meta keys of
            :class:`~genlab.models.adversarial.AdversarialModule`.
    """

    supports_diffaug = True
    paired = True
    directions = ("AtoB",)
    divergence_advice = "Try a lower learning rate (model.optimizer_g.lr, model.optimizer_d.lr)."

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        lambda_l1: float = 100.0,
        gan_mode: str = "vanilla",
        n_epochs: int | None = None,
        n_epochs_decay: int | None = None,
        grid_size: int = 8,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        if gan_mode not in GAN_MODES:
            raise GenlabError(f"model.gan_mode={gan_mode} is not one of {', '.join(GAN_MODES)}.")
        if lambda_l1 < 0:
            raise GenlabError(f"model.lambda_l1={lambda_l1} must be >= 0 (the paper uses 100).")
        for key, value in (("n_epochs", n_epochs), ("n_epochs_decay", n_epochs_decay)):
            if value is not None and value < 0:
                raise GenlabError(f"model.{key}={value} must be >= 0.")
        self.generator = generator
        self.discriminator = discriminator
        self.optimizer_g_factory = optimizer_g
        self.optimizer_d_factory = optimizer_d
        self.lambda_l1 = lambda_l1
        self.gan_mode = gan_mode
        self.loss = GAN_MODES[gan_mode]()
        self.n_epochs = n_epochs
        self.n_epochs_decay = n_epochs_decay
        self.grid_size = grid_size
        self.val_metrics = translation_metric_collection("val/")
        self.test_metrics = translation_metric_collection("test/")

    # ----------------------------------------------------------------- translation (capability Translates)
    @property
    def image_size(self) -> int:
        """Side of the square images the generator was built for."""
        return self.generator.image_size

    def input_channels(self, direction: str = "AtoB") -> int:
        """Channels of the inputs A."""
        return self.generator.in_channels

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """G(A): inputs (N, in_channels, S, S) in [-1, 1] → outputs (N, out_channels, S, S) in [-1, 1]."""
        if direction != "AtoB":
            raise GenlabError(f"direction={direction}: pix2pix translates one way only (direction=AtoB).")
        return self.generator(images)

    def forward(self, inputs: Tensor) -> Tensor:
        return self.translate(inputs)

    def sampling_network(self) -> nn.Module:
        """The network that translates: the generator (capability Exports)."""
        return self.generator

    # ----------------------------------------------------------------- training
    def check_data(self, datamodule: Any) -> None:
        if not isinstance(datamodule, PairedDataModule):
            raise GenlabError(
                f"model=pix2pix needs a paired dataset (batches of input A and target B images), but "
                f"data={datamodule.name} is not paired. Paired datasets: {PAIRED_DATASETS}."
            )
        wanted = (self.generator.in_channels, self.generator.out_channels, self.generator.image_size)
        have = (datamodule.input_channels, datamodule.channels, datamodule.image_size)
        if wanted != have:
            raise GenlabError(
                f"model=pix2pix was built for (input channels, channels, image size) = {wanted} but "
                f"data={datamodule.name} delivers {have}: keep the model's ${{data.*}} interpolations."
            )

    def configure_callbacks(self) -> list[Callback]:
        return [TranslationGridCallback(self.grid_size)] if self.grid_size > 0 else []

    def configure_optimizers(self) -> Any:
        optimizer_g = make_optimizer(self.optimizer_g_factory, self.generator.parameters(), "optimizer_g")
        optimizer_d = make_optimizer(self.optimizer_d_factory, self.discriminator.parameters(), "optimizer_d")
        max_epochs = self.trainer.max_epochs if self._trainer is not None else None
        rule = decay_plan(self.n_epochs, self.n_epochs_decay, max_epochs)
        return [optimizer_g, optimizer_d], [LambdaLR(optimizer_g, rule), LambdaLR(optimizer_d, rule)]

    def conditional_d(self, images: Tensor, inputs: Tensor) -> Tensor:
        """D(A, B): patch logits of target-domain ``images`` conditioned on the ``inputs`` A (the
        GAN losses' ``d(images, condition)``); with ``model.diffaug`` each call augments the pair with one draw."""
        inputs, images = self.augment(inputs, images)
        return self.discriminator(torch.cat([inputs, images], 1))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        inputs, targets = batch
        optimizer_g, optimizer_d = self.optimizers()
        generated = self.generator(inputs)
        loss_d, out_real, out_fake = self.loss.discriminator_loss(
            self.conditional_d, targets, generated.detach(), inputs
        )
        loss_d = 0.5 * loss_d
        self.discriminator_update(optimizer_d, loss_d)
        with frozen(self.discriminator):
            loss_g_gan, _ = self.loss.generator_loss(self.conditional_d, generated, inputs)
        loss_g_l1 = F.l1_loss(generated, targets)
        loss_g = loss_g_gan + self.lambda_l1 * loss_g_l1
        self.generator_update(optimizer_g, loss_g)
        metrics = {"train/loss_d": loss_d, "train/loss_g": loss_g, "train/loss_g_gan": loss_g_gan}
        metrics.update({"train/loss_g_l1": loss_g_l1, "train/d_real": self.loss.score(out_real)})
        metrics["train/d_fake"] = self.loss.score(out_fake)
        metrics.update(self.observe_real(self.loss.realness(out_real)))
        self.log_step(metrics, prog_bar=("train/loss_d", "train/loss_g"), on_epoch=False)

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log("train/lr", self.optimizers()[0].param_groups[0]["lr"])
        for scheduler in self.lr_schedulers():
            scheduler.step()

    def _eval_step(self, batch: tuple[Tensor, Tensor], metrics: MetricCollection) -> None:
        inputs, targets = batch
        metrics.update(to_unit_range(self.translate(inputs)), to_unit_range(targets))
        self.log_dict(metrics, prog_bar=metrics is self.val_metrics)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.test_metrics)
