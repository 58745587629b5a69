"""pix2pix (Isola et al. 2017): a U-Net generator G(A) trained against a conditional PatchGAN
D(A, B) with a cGAN loss plus λ·L1(G(A), B).

Batches are pairs ``(A, B)`` of float images in [-1, 1] (see :mod:`genlab.data.paired`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from pytorch_lightning import Callback
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torchmetrics import MetricCollection
from torchvision.utils import save_image

from genlab.callbacks.translation_grid import (
    TranslationGridCallback,
    comparison_grid,
    triples_grid,
    triples_per_row,
)
from genlab.data.paired import PAIRED_DATASETS
from genlab.data.user_images import input_images, load_user_images, output_names
from genlab.errors import GenlabError, TrainingDivergedError
from genlab.metrics.features import to_uint8
from genlab.metrics.translation import translate_pairs, translation_metric_collection
from genlab.models.base import GenerativeModule, to_unit_range
from genlab.models.losses import BCELoss, GANLoss, LSGANLoss
from genlab.tasks.common import instantiate_datamodule, load_run_config

log = logging.getLogger("genlab")

# model.gan_mode → the cGAN loss object (the official code's option names)
GAN_MODES: dict[str, type[GANLoss]] = {"vanilla": BCELoss, "lsgan": LSGANLoss}
TRANSLATE_BATCH = 64


@dataclass
class LinearDecay:
    """LR factor of pix2pix: 1 for ``n_epochs`` epochs, then linearly down towards 0 over
    ``n_epochs_decay`` epochs (the official ``lambda_rule``). A callable object, so LambdaLR saves it."""

    n_epochs: int
    n_epochs_decay: int

    def __call__(self, epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - self.n_epochs) / (self.n_epochs_decay + 1)


class Pix2PixModule(GenerativeModule):
    """pix2pix with manual optimization: per batch one D step, then one G step.

    Logs ``train/loss_d``, ``train/loss_g``, ``train/loss_g_gan``, ``train/loss_g_l1``,
    ``train/d_real``, ``train/d_fake``, ``train/lr``, and L1 / PSNR / SSIM of G(A) against B
    (images in [0, 1]) as ``val/l1``, ``val/psnr``, ``val/ssim`` and ``test/...``.

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
    """

    sample_options: ClassVar[frozenset[str]] = frozenset({"input", "split"})
    uses_image_grid: ClassVar[bool] = False

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        lambda_l1: float = 100.0,
        gan_mode: str = "vanilla",
        n_epochs: int | None = None,
        n_epochs_decay: int | None = None,
        grid_size: int = 8,
    ) -> None:
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise GenlabError(f"model.gan_mode={gan_mode} is not one of {', '.join(GAN_MODES)}.")
        if lambda_l1 < 0:
            raise GenlabError(f"model.lambda_l1={lambda_l1} must be >= 0 (the paper uses 100).")
        for key, value in (("n_epochs", n_epochs), ("n_epochs_decay", n_epochs_decay)):
            if value is not None and value < 0:
                raise GenlabError(f"model.{key}={value} must be >= 0.")
        self.automatic_optimization = False
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

    # ----------------------------------------------------------------- translation
    @property
    def image_size(self) -> int:
        """Side of the square images the generator was built for."""
        return self.generator.image_size

    def translate(self, inputs: Tensor) -> Tensor:
        """G(A): inputs (N, in_channels, S, S) in [-1, 1] → outputs (N, out_channels, S, S) in [-1, 1]."""
        return self.generator(inputs)

    def forward(self, inputs: Tensor) -> Tensor:
        return self.translate(inputs)

    def generate(
        self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None, **options: Any
    ) -> Tensor:
        """pix2pix has no prior to sample from: it translates inputs (see :meth:`translate`)."""
        raise GenlabError(
            "pix2pix translates input images instead of sampling from noise: use `genlab sample run=DIR` "
            "(test-split triples) or `genlab sample run=DIR input=PATH`."
        )

    def translation_metrics(self, dataloader: Iterable[tuple[Tensor, Tensor]]) -> dict[str, float]:
        """L1, PSNR and SSIM of G(A) against B over ``dataloader`` (images in [0, 1], eval mode)."""
        was_training = self.training
        self.eval()
        try:
            return translate_pairs(self.translate, dataloader, self.device).pixel
        finally:
            self.train(was_training)

    # ----------------------------------------------------------------- training
    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None:
            return
        if not getattr(datamodule, "paired", False):
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

    def lr_plan(self) -> tuple[int, int]:
        """(constant epochs, decay epochs), filling unset ones from ``trainer.max_epochs``."""
        max_epochs = self.trainer.max_epochs if self._trainer is not None else None
        n_epochs, n_decay = self.n_epochs, self.n_epochs_decay
        if max_epochs is None or max_epochs < 0:
            return (n_epochs if n_epochs is not None else 10**9), (n_decay or 0)
        if n_epochs is None and n_decay is None:
            n_epochs = math.ceil(max_epochs / 2)
        if n_epochs is None:
            n_epochs = max(0, max_epochs - n_decay)
        if n_decay is None:
            n_decay = max(0, max_epochs - n_epochs)
        if n_epochs + n_decay != max_epochs:
            log.warning(
                "pix2pix: model.n_epochs=%d + model.n_epochs_decay=%d differs from trainer.max_epochs=%d.",
                n_epochs,
                n_decay,
                max_epochs,
            )
        return n_epochs, n_decay

    def configure_optimizers(self) -> Any:
        optimizer_g = self.optimizer_g_factory(params=self.generator.parameters())
        optimizer_d = self.optimizer_d_factory(params=self.discriminator.parameters())
        rule = LinearDecay(*self.lr_plan())
        return [optimizer_g, optimizer_d], [LambdaLR(optimizer_g, rule), LambdaLR(optimizer_d, rule)]

    def conditional_d(self, images: Tensor, inputs: Tensor) -> Tensor:
        """D(A, B): patch logits of target-domain ``images`` conditioned on the ``inputs`` A (the
        GAN losses' ``d(images, condition)``)."""
        return self.discriminator(torch.cat([inputs, images], 1))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        inputs, targets = batch
        optimizer_g, optimizer_d = self.optimizers()
        generated = self.generator(inputs)

        self.discriminator.requires_grad_(True)
        loss_d, out_real, out_fake = self.loss.discriminator_loss(
            self.conditional_d, targets, generated.detach(), inputs
        )
        loss_d = 0.5 * loss_d
        self._check_finite("loss_d", loss_d)
        optimizer_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        optimizer_d.step()

        self.discriminator.requires_grad_(False)
        loss_g_gan, _ = self.loss.generator_loss(self.conditional_d, generated, inputs)
        loss_g_l1 = F.l1_loss(generated, targets)
        loss_g = loss_g_gan + self.lambda_l1 * loss_g_l1
        self._check_finite("loss_g", loss_g)
        optimizer_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        optimizer_g.step()
        self.discriminator.requires_grad_(True)

        metrics = {"train/loss_d": loss_d, "train/loss_g": loss_g, "train/loss_g_gan": loss_g_gan}
        metrics.update({"train/loss_g_l1": loss_g_l1, "train/d_real": self.loss.score(out_real)})
        metrics["train/d_fake"] = self.loss.score(out_fake)
        self.log_step(metrics, prog_bar=("train/loss_d", "train/loss_g"), on_epoch=False)

    def _check_finite(self, name: str, loss: Tensor) -> None:
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"pix2pix diverged: {name}={loss.item()} at step {self.global_step}. The last good checkpoint "
                "is kept; try a lower learning rate (model.optimizer_g.lr, model.optimizer_d.lr)."
            )

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

    # ----------------------------------------------------------------- genlab sample
    @torch.no_grad()
    def translate_batched(self, inputs: Tensor) -> Tensor:
        """G(A) on the model's device in chunks, returned on the CPU."""
        return torch.cat([self.translate(chunk.to(self.device)).cpu() for chunk in inputs.split(TRANSLATE_BATCH)])

    @torch.no_grad()
    def sample_to(self, cfg: DictConfig, out_dir: Path) -> list[Path]:
        """``genlab sample``: triples of a split of the run's dataset (default ``test``), or with
        ``input=PATH`` the translation of the user's images (``<name>.png`` each, plus ``grid.png``)."""
        self.check_sample_options(cfg)
        self.parse_labels(cfg.label, 1)
        if cfg.format not in ("grid", "png", "npz"):
            raise GenlabError(f"format={cfg.format} is not one of grid, png, npz.")
        if cfg.get("input"):
            return self._translate_files(str(cfg.input), out_dir, cfg.nrow)
        return self._split_triples(cfg, out_dir)

    def _split_triples(self, cfg: DictConfig, out_dir: Path) -> list[Path]:
        if cfg.n < 1:
            raise GenlabError(f"n={cfg.n} must be at least 1.")
        datamodule = instantiate_datamodule(load_run_config(cfg.run), train=False)
        inputs, targets = datamodule.fixed_pairs(cfg.get("split") or "test", cfg.n)
        generated = self.translate_batched(inputs)
        out_dir.mkdir(parents=True, exist_ok=True)
        grid_path = out_dir / "grid.png"
        save_image(triples_grid(inputs, generated, targets, cfg.nrow or triples_per_row(len(inputs))), grid_path)
        written = [grid_path]
        if cfg.format == "png":
            folder = out_dir / "images"
            folder.mkdir(exist_ok=True)
            for i in range(len(inputs)):
                triple = triples_grid(inputs[i : i + 1], generated[i : i + 1], targets[i : i + 1])
                save_image(triple, folder / f"{i:05d}.png")
            written.append(folder)
        elif cfg.format == "npz":
            path = out_dir / "samples.npz"
            arrays = {
                key: to_uint8(x).numpy() for key, x in (("inputs", inputs), ("images", generated), ("targets", targets))
            }
            np.savez_compressed(path, **arrays)
            written.append(path)
        return written

    def _translate_files(self, input_path: str, out_dir: Path, nrow: int | None) -> list[Path]:
        files = input_images(input_path)
        inputs = load_user_images(files, self.generator.in_channels, self.image_size)
        generated = self.translate_batched(inputs)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for path, name, image in zip(files, output_names(files), generated, strict=True):
            target = out_dir / name
            save_image(to_unit_range(image), target)
            log.info("%s -> %s", path, target)
            written.append(target)
        grid_path = out_dir / "grid.png"
        save_image(comparison_grid([inputs, generated], nrow or triples_per_row(len(files))), grid_path)
        return [grid_path, *written]
