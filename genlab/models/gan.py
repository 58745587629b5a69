"""One GAN LightningModule for the whole family: vanilla GAN, DCGAN, cGAN, WGAN-GP.

Variants differ only in the objects they are built from (generator, discriminator, loss, latent
prior, number of classes), never in branches of the training loop.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import torch
from omegaconf import DictConfig
from pytorch_lightning.core.optimizer import LightningOptimizer, do_nothing_closure
from torch import Tensor, nn

from genlab.errors import GenlabError, TrainingDivergedError
from genlab.models.base import GenerativeModule, to_unit_range, write_samples
from genlab.models.losses import GANLoss
from genlab.noise.priors import NoiseDist


@contextmanager
def uncounted_steps(optimizer: LightningOptimizer) -> Iterator[None]:
    """Step ``optimizer`` without advancing ``trainer.global_step``.

    Under manual optimization Lightning counts every ``LightningOptimizer.step()`` as a training
    step (through two hooks it installs on each optimizer); the discriminator's steps are run with
    those hooks switched off, so ``global_step`` and ``max_steps`` count generator updates. The
    precision plugin (gradient scaling, closures) is still used.
    """
    saved = optimizer._on_before_step, optimizer._on_after_step
    optimizer._on_before_step = optimizer._on_after_step = do_nothing_closure
    try:
        yield
    finally:
        optimizer._on_before_step, optimizer._on_after_step = saved


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Temporarily put ``module`` in eval mode (BatchNorm uses its running statistics)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


class GANModule(GenerativeModule):
    """Adversarial training with manual optimization.

    Each batch makes one discriminator update; every ``n_critic``-th batch also makes one
    generator update. ``trainer.global_step`` (and so ``trainer.max_steps``) counts generator
    updates. Logs ``train/loss_d``, ``train/loss_g``, ``train/d_real`` and ``train/d_fake``
    (the loss's reading of D's output: a probability for BCE and the K+1 head, the raw critic
    value for WGAN-GP). A NaN or infinite loss raises :class:`TrainingDivergedError`.

    Args:
        generator: ``generator(z, labels) -> images in [-1, 1]``; has attribute ``nz``.
        discriminator: ``discriminator(images, labels) -> logits``.
        loss: a :class:`GANLoss` (BCE, WGAN-GP, multiclass).
        prior: the latent distribution z is drawn from.
        optimizer_g, optimizer_d: partial optimizers called with the parameters.
        num_classes: > 0 for a class-conditional GAN (fakes use the real batch's labels).
        n_critic: discriminator updates per generator update.
        ema_decay: keep an exponential moving average of the generator's weights (e.g. 0.999, with
            warm-up ``min(decay, (1 + t) / (10 + t))`` after t updates), used for samples and eval and
            saved in checkpoints; null to turn it off.
        require_labels: refuse a dataset without classes (set by conditional model configs).
    """

    sample_options: ClassVar[frozenset[str]] = frozenset({"truncation", "interpolate"})

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        prior: NoiseDist,
        optimizer_g: Callable[..., torch.optim.Optimizer],
        optimizer_d: Callable[..., torch.optim.Optimizer],
        num_classes: int = 0,
        n_critic: int = 1,
        ema_decay: float | None = None,
        require_labels: bool = False,
    ) -> None:
        super().__init__()
        if require_labels and num_classes < 1:
            raise GenlabError(
                "this conditional GAN needs a labelled dataset, but the data config has num_classes=0: "
                "use a dataset with classes (digits, mnist, fashion_mnist, cifar10, image_folder with class "
                "folders) or an unconditional model (model=dcgan)."
            )
        if n_critic < 1:
            raise GenlabError(f"model.n_critic={n_critic} must be at least 1.")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise GenlabError(f"model.ema_decay={ema_decay} must be in (0, 1), or null to turn EMA off.")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.loss = loss
        self.prior = prior
        self.optimizer_g_factory = optimizer_g
        self.optimizer_d_factory = optimizer_d
        self.num_classes = num_classes
        self.n_critic = n_critic
        self.ema_decay = ema_decay
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False) if ema_decay is not None else None
        self.d_updates = 0
        self.ema_updates = 0
        self._check_compatible()

    @property
    def nz(self) -> int:
        return self.generator.nz

    def _check_compatible(self) -> None:
        """Fail early, with the option to change, when G, D and the loss do not fit together."""
        labels = torch.zeros(2, dtype=torch.long) if self.conditional else None
        with torch.no_grad(), eval_mode(self.generator), eval_mode(self.discriminator):
            out = self.discriminator(self.generator(torch.zeros(2, self.nz), labels), labels)
        wanted = self.loss.d_outputs(self.num_classes)
        if (out.shape[1] if out.ndim == 2 else 1) != wanted:
            raise GenlabError(
                f"model.loss={type(self.loss).__name__} expects {wanted} logit(s) per image but the discriminator "
                f"returns shape {tuple(out.shape)}: the K+1 head goes with the multiclass loss only "
                "(use model/head=realfake with model/loss=wgan_gp)."
            )

    # ---- generation -------------------------------------------------------------------------------

    @property
    def sampling_generator(self) -> nn.Module:
        """The network used for samples and eval: the EMA generator when there is one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def sample_noise(self, n: int, generator: torch.Generator | None = None, prior: NoiseDist | None = None) -> Tensor:
        """``n`` latent vectors (n, nz) from the prior (or from ``prior``), on this module's device."""
        return (prior or self.prior).sample((n, self.nz), generator=generator, device=self.device)

    @torch.no_grad()
    def generate(
        self,
        n: int,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,
        truncation: float | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` images in [-1, 1] from fresh noise (or from ``noise``), optionally truncated."""
        if noise is None:
            prior = self.prior.truncate(check_truncation(truncation)) if truncation is not None else None
            noise = self.sample_noise(n, generator, prior)
        with eval_mode(self.sampling_generator) as net:
            return net(noise.to(self.device), None if labels is None else labels.to(self.device))

    @torch.no_grad()
    def sample_to(self, cfg: DictConfig, out_dir: Path) -> list[Path]:
        """``genlab sample``: a grid / PNGs / npz of samples, or of latent interpolations (``interpolate=true``)."""
        if not cfg.get("interpolate"):
            if cfg.get("truncation") is not None:
                check_truncation(cfg.truncation)
            return super().sample_to(cfg, out_dir)
        self.check_sample_options(cfg)
        if cfg.n < 2:
            raise GenlabError(f"n={cfg.n}: interpolate=true needs n >= 2 (rows of nrow images).")
        if cfg.format not in ("grid", "png", "npz"):
            raise GenlabError(f"format={cfg.format} is not one of grid, png, npz.")
        steps = cfg.nrow or 8
        if steps < 2:
            raise GenlabError(f"nrow={steps}: an interpolation row needs at least 2 images.")
        rows = max(1, cfg.n // steps)
        prior = self.prior.truncate(check_truncation(cfg.truncation)) if cfg.truncation is not None else self.prior
        generator = torch.Generator(self.device).manual_seed(cfg.seed)
        ends = self.sample_noise(2 * rows, generator, prior).view(rows, 2, self.nz)
        noise = torch.cat([prior.interpolate(start, end, steps) for start, end in ends])
        row_labels = self.parse_labels(cfg.label, rows)
        labels = None if row_labels is None else row_labels.repeat_interleave(steps)
        images = self.generate(len(noise), labels=labels, noise=noise)
        return write_samples(to_unit_range(images).cpu(), labels, out_dir, cfg.format, steps, self.num_classes)

    # ---- training ---------------------------------------------------------------------------------

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            self.optimizer_g_factory(params=self.generator.parameters()),
            self.optimizer_d_factory(params=self.discriminator.parameters()),
        ]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real, batch_labels = batch
        labels = batch_labels if self.conditional else None
        if labels is not None and bool((labels < 0).any()):
            raise GenlabError(
                "a conditional GAN needs labelled images, but this dataset's batch has unlabelled ones (-1)."
            )
        opt_g, opt_d = self.optimizers()
        n = real.shape[0]

        generator_turn = (self.d_updates + 1) % self.n_critic == 0
        with torch.set_grad_enabled(generator_turn):
            fake = self.generator(self.sample_noise(n), labels)
        loss_d, out_real, out_fake = self.loss.discriminator_loss(self.discriminator, real, fake.detach(), labels)
        self._check_finite("loss_d", loss_d)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        with uncounted_steps(opt_d):
            opt_d.step()
        self.d_updates += 1
        scores = {"train/d_real": self.loss.score(out_real), "train/d_fake": self.loss.score(out_fake)}
        self.log_step({"train/loss_d": loss_d, **scores}, prog_bar=("train/loss_d",))

        if not generator_turn:
            return
        loss_g, _ = self.loss.generator_loss(self.discriminator, fake, labels)
        self._check_finite("loss_g", loss_g)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)
        opt_g.step()
        self._update_ema()
        self.log_step({"train/loss_g": loss_g}, prog_bar=True)

    def _check_finite(self, name: str, value: Tensor) -> None:
        if not math.isfinite(float(value.detach())):
            raise TrainingDivergedError(
                f"training diverged: {name} became {float(value.detach())} at step {self.global_step} "
                f"(epoch {self.current_epoch}); the last good checkpoint is kept in checkpoints/. "
                "Try a lower learning rate (model.optimizer_g.lr / model.optimizer_d.lr) or model/loss=wgan_gp."
            )

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.generator_ema is None:
            return
        # Warm-up (as TensorFlow's ExponentialMovingAverage): early on the average follows the weights
        # closely, so short runs are not dominated by the random initialisation.
        self.ema_updates += 1
        decay = min(self.ema_decay, (1 + self.ema_updates) / (10 + self.ema_updates))
        for ema, param in zip(self.generator_ema.parameters(), self.generator.parameters(), strict=True):
            ema.lerp_(param, 1.0 - decay)
        for ema, buffer in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            ema.copy_(buffer)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gan_updates"] = {"d": self.d_updates, "ema": self.ema_updates}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        updates = checkpoint.get("gan_updates", {})
        self.d_updates, self.ema_updates = int(updates.get("d", 0)), int(updates.get("ema", 0))


def check_truncation(value: float | None) -> float:
    """A valid truncation threshold (> 0), or a clear error."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise GenlabError(f"truncation={value} must be a number > 0 (e.g. truncation=1.0), or left out.")
    return float(value)
