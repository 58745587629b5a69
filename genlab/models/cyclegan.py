"""CycleGAN (Zhu et al. 2017): unpaired translation between domains A and B.

Two generators, G: A → B and F: B → A, and two unconditional PatchGANs, D_A (real A against F(B))
and D_B (real B against G(A)), trained as the official implementation does:

- LSGAN loss (:class:`~genlab.models.losses.LSGANLoss`); each discriminator's loss is halved;
- cycle consistency λ_cyc·(‖F(G(A)) − A‖₁ + ‖G(F(B)) − B‖₁) with λ_cyc = 10;
- identity λ_cyc·λ_identity·(‖G(B) − B‖₁ + ‖F(A) − A‖₁) with λ_identity = 0.5 (so λ_id = 5);
- the discriminators learn from image pools of the last 50 fakes (:class:`~genlab.models.image_pool.ImagePool`);
- per batch one update of both generators (one Adam, counted: ``max_steps`` counts these), then one
  of both discriminators (one Adam, not counted); LR constant, then linearly down to 0;
- weights initialised from N(0, 0.02), biases 0.

Batches are ``(A, B)`` from an unpaired datamodule (:mod:`genlab.data.unpaired`). The official code
calls G ``netG_A`` and names D_B ``netD_A``; here a discriminator is named after the domain it judges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch.nn.functional as F
from pytorch_lightning import Callback
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from genlab.callbacks.translation_grid import TranslationGridCallback
from genlab.data.paired import PairedDataModule
from genlab.data.unpaired import UnpairedDataModule
from genlab.errors import GenlabError
from genlab.imaging import to_unit_range
from genlab.metrics.translation import translation_metric_collection
from genlab.models.adversarial import AdversarialModule, decay_plan, frozen
from genlab.models.base import OptimizerFactory, make_optimizer
from genlab.models.ema import make_ema
from genlab.models.image_pool import ImagePool
from genlab.models.losses import LSGANLoss

NetFactory = Callable[..., nn.Module]
UNPAIRED_DATASETS = (
    "data=unpaired_edges2digits or data=unpaired_folder (root/trainA, root/trainB, root/testA, root/testB)"
)


def normal_init(module: nn.Module, gain: float) -> None:
    """The official ``init_weights(type='normal')``: conv/linear weights N(0, gain), BatchNorm weights
    N(1, gain); biases 0. Instance norm without affine parameters has nothing to initialise."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, gain)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, gain)
        nn.init.zeros_(module.bias)


@dataclass
class GeneratorPass:
    """One forward pass of both generators and the generators' loss terms (unweighted means)."""

    fake_b: Tensor  # G(A)
    fake_a: Tensor  # F(B)
    gan_ab: Tensor  # LSGAN term of G: (D_B(G(A)) − 1)²
    gan_ba: Tensor  # LSGAN term of F: (D_A(F(B)) − 1)²
    cycle_a: Tensor  # ‖F(G(A)) − A‖₁
    cycle_b: Tensor  # ‖G(F(B)) − B‖₁
    identity_a: Tensor  # ‖F(A) − A‖₁ (0 when λ_identity = 0)
    identity_b: Tensor  # ‖G(B) − B‖₁
    total: Tensor  # the generators' loss


class CycleGANModule(AdversarialModule):
    """CycleGAN with manual optimization (see the module docstring).

    Logs ``train/loss_g``, ``train/loss_d``, ``train/loss_g_gan``, ``train/loss_cycle``,
    ``train/loss_identity``, ``train/d_real``, ``train/d_fake``, ``train/lr``; on val/test the cycle
    reconstruction errors ``cycle_l1_A`` = mean |F(G(A)) − A| and ``cycle_l1_B`` (images in [-1, 1]) and,
    where the split keeps true pairs, L1 / PSNR / SSIM of G(A) against B (images in [0, 1]), as pix2pix.

    Args:
        generator: partial image-to-image net (``in_channels``, ``out_channels`` set here): G and F.
        discriminator: partial unconditional PatchGAN (``in_channels`` set here): D_A and D_B.
        optimizer_g, optimizer_d: partial optimizers (``_partial_: true``), over both G and F / D_A and D_B.
        channels_a, channels_b: channels of domains A and B.
        lambda_cyc: weight of each cycle-consistency L1 term (10 in the paper).
        lambda_identity: identity weight relative to ``lambda_cyc`` (0.5: λ_id = 5; 0 turns it off).
        pool_size: fakes kept per discriminator (50; 0 shows D only the latest batch).
        n_epochs: epochs at the initial learning rate (null: half of ``trainer.max_epochs``).
        n_epochs_decay: epochs of linear decay to 0 (null: the rest of ``trainer.max_epochs``).
        init_gain: standard deviation of the N(0, σ) initialisation (null: PyTorch's default init).
        ema_decay: keep exponential moving averages of G and F for translation (null: off).
        grid_size: images per domain in the per-epoch grid (0: none).
        **meta: the model config's ``name``, ``epochs``, ``monitor``.
    """

    paired = False
    directions = ("AtoB", "BtoA")
    divergence_advice = "Try a lower learning rate (model.optimizer_g.lr, model.optimizer_d.lr)."

    def __init__(
        self,
        generator: NetFactory,
        discriminator: NetFactory,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        channels_a: int,
        channels_b: int,
        lambda_cyc: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        n_epochs: int | None = None,
        n_epochs_decay: int | None = None,
        init_gain: float | None = 0.02,
        ema_decay: float | None = None,
        grid_size: int = 8,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        for key, value in (("lambda_cyc", lambda_cyc), ("lambda_identity", lambda_identity)):
            if value < 0:
                raise GenlabError(f"model.{key}={value} must be >= 0 (the paper uses λ_cyc = 10, λ_identity = 0.5).")
        counts = {"n_epochs": n_epochs, "n_epochs_decay": n_epochs_decay, "pool_size": pool_size}
        for key, value in {**counts, "init_gain": init_gain}.items():
            if value is not None and value < 0:
                raise GenlabError(f"model.{key}={value} must be >= 0.")
        if lambda_identity > 0 and channels_a != channels_b:
            raise GenlabError(
                f"model.lambda_identity={lambda_identity} compares G(B) with B, which needs domains with the same "
                f"channels, but A has {channels_a} and B {channels_b}: set model.lambda_identity=0."
            )
        self.generator_ab = generator(in_channels=channels_a, out_channels=channels_b)
        self.generator_ba = generator(in_channels=channels_b, out_channels=channels_a)
        self.discriminator_a = discriminator(in_channels=channels_a)
        self.discriminator_b = discriminator(in_channels=channels_b)
        if init_gain is not None:
            for net in (self.generator_ab, self.generator_ba, self.discriminator_a, self.discriminator_b):
                net.apply(partial(normal_init, gain=init_gain))
        self.ema_ab = make_ema(self.generator_ab, ema_decay)
        self.ema_ba = make_ema(self.generator_ba, ema_decay)
        self.channels = {"A": channels_a, "B": channels_b}
        self.optimizer_g_factory = optimizer_g
        self.optimizer_d_factory = optimizer_d
        self.lambda_cyc = lambda_cyc
        self.lambda_identity = lambda_identity
        self.loss = LSGANLoss()
        self.pools = {"A": ImagePool(pool_size), "B": ImagePool(pool_size)}
        self.n_epochs = n_epochs
        self.n_epochs_decay = n_epochs_decay
        self.grid_size = grid_size
        self.val_metrics = translation_metric_collection("val/")
        self.test_metrics = translation_metric_collection("test/")
        self.true_pairs = False

    # ----------------------------------------------------------------- translation (capability Translates)
    @property
    def image_size(self) -> int:
        """Side of the square images the generators were built for."""
        return self.generator_ab.image_size

    def input_channels(self, direction: str = "AtoB") -> int:
        """Channels of the source domain of ``direction`` (A for AtoB, B for BtoA)."""
        if direction not in self.directions:
            raise GenlabError(f"direction={direction} is not one of {', '.join(self.directions)} (model=cyclegan).")
        return self.channels[direction[0]]

    def translation_network(self, direction: str) -> nn.Module:
        """G (AtoB) or F (BtoA); their moving averages when ``ema_decay`` is set."""
        self.input_channels(direction)  # checks the direction
        live, ema = (self.generator_ab, self.ema_ab) if direction == "AtoB" else (self.generator_ba, self.ema_ba)
        return ema.module if ema is not None else live

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """G(A) (``AtoB``) or F(B) (``BtoA``): images in [-1, 1] → the other domain, in [-1, 1]."""
        return self.translation_network(direction)(images)

    # ----------------------------------------------------------------- losses
    def _judge_a(self, images: Tensor, condition: Tensor | None) -> Tensor:
        """D_A as the GAN losses call a discriminator (no condition)."""
        return self.discriminator_a(images)

    def _judge_b(self, images: Tensor, condition: Tensor | None) -> Tensor:
        return self.discriminator_b(images)

    def generator_pass(self, real_a: Tensor, real_b: Tensor) -> GeneratorPass:
        """Translate both ways and compute the generators' loss terms (the discriminators are frozen)."""
        fake_b, fake_a = self.generator_ab(real_a), self.generator_ba(real_b)
        cycle_a = F.l1_loss(self.generator_ba(fake_b), real_a)
        cycle_b = F.l1_loss(self.generator_ab(fake_a), real_b)
        zero = real_a.new_zeros(())
        identity_a = F.l1_loss(self.generator_ba(real_a), real_a) if self.lambda_identity > 0 else zero
        identity_b = F.l1_loss(self.generator_ab(real_b), real_b) if self.lambda_identity > 0 else zero
        with frozen(self.discriminator_a), frozen(self.discriminator_b):
            gan_ab, _ = self.loss.generator_loss(self._judge_b, fake_b, None)
            gan_ba, _ = self.loss.generator_loss(self._judge_a, fake_a, None)
        cycle = self.lambda_cyc * (cycle_a + cycle_b)
        identity = self.lambda_cyc * self.lambda_identity * (identity_a + identity_b)
        total = gan_ab + gan_ba + cycle + identity
        return GeneratorPass(fake_b, fake_a, gan_ab, gan_ba, cycle_a, cycle_b, identity_a, identity_b, total)

    def discriminator_loss(self, real_a: Tensor, real_b: Tensor, fake_a: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        """½ LSGAN loss of D_A (real A against the fakes ``fake_a``) plus that of D_B; D outputs for logging."""
        loss_a, real_out_a, fake_out_a = self.loss.discriminator_loss(self._judge_a, real_a, fake_a, None)
        loss_b, real_out_b, fake_out_b = self.loss.discriminator_loss(self._judge_b, real_b, fake_b, None)
        return {
            "loss": 0.5 * (loss_a + loss_b),
            "d_real": 0.5 * (self.loss.score(real_out_a) + self.loss.score(real_out_b)),
            "d_fake": 0.5 * (self.loss.score(fake_out_a) + self.loss.score(fake_out_b)),
        }

    # ----------------------------------------------------------------- training
    def check_data(self, datamodule: Any) -> None:
        if not isinstance(datamodule, UnpairedDataModule):
            kind = "paired data (pix2pix trains on it)" if isinstance(datamodule, PairedDataModule) else "no domains"
            raise GenlabError(
                f"model=cyclegan needs unpaired data with two image domains A and B, but data={datamodule.name} "
                f"has {kind}. Use {UNPAIRED_DATASETS}."
            )
        wanted = (self.channels["A"], self.channels["B"], self.image_size)
        have = (datamodule.input_channels, datamodule.channels, datamodule.image_size)
        if wanted != have:
            raise GenlabError(
                f"model=cyclegan was built for (channels of A, channels of B, image size) = {wanted} but "
                f"data={datamodule.name} delivers {have}: keep the model's ${{data.*}} interpolations."
            )

    def configure_callbacks(self) -> list[Callback]:
        return [TranslationGridCallback(self.grid_size)] if self.grid_size > 0 else []

    def configure_optimizers(self) -> Any:
        generators = [*self.generator_ab.parameters(), *self.generator_ba.parameters()]
        discriminators = [*self.discriminator_a.parameters(), *self.discriminator_b.parameters()]
        optimizer_g = make_optimizer(self.optimizer_g_factory, generators, "optimizer_g")
        optimizer_d = make_optimizer(self.optimizer_d_factory, discriminators, "optimizer_d")
        max_epochs = self.trainer.max_epochs if self._trainer is not None else None
        rule = decay_plan(self.n_epochs, self.n_epochs_decay, max_epochs)
        return [optimizer_g, optimizer_d], [LambdaLR(optimizer_g, rule), LambdaLR(optimizer_d, rule)]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real_a, real_b = batch
        optimizer_g, optimizer_d = self.optimizers()
        step = self.generator_pass(real_a, real_b)
        self.generator_update(optimizer_g, step.total)
        for ema, live in ((self.ema_ab, self.generator_ab), (self.ema_ba, self.generator_ba)):
            if ema is not None:
                ema.update(live)
        fake_a, fake_b = self.pools["A"].query(step.fake_a), self.pools["B"].query(step.fake_b)
        d = self.discriminator_loss(real_a, real_b, fake_a, fake_b)
        self.discriminator_update(optimizer_d, d["loss"])
        metrics = {"train/loss_g": step.total, "train/loss_d": d["loss"], "train/loss_g_gan": step.gan_ab + step.gan_ba}
        metrics.update({"train/loss_cycle": step.cycle_a + step.cycle_b, "train/d_real": d["d_real"]})
        metrics.update({"train/loss_identity": step.identity_a + step.identity_b, "train/d_fake": d["d_fake"]})
        self.log_step(metrics, prog_bar=("train/loss_d", "train/loss_g"))

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log("train/lr", self.optimizers()[0].param_groups[0]["lr"])
        for scheduler in self.lr_schedulers():
            scheduler.step()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["image_pools"] = {domain: pool.state_dict() for domain, pool in self.pools.items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for domain, state in checkpoint.get("image_pools", {}).items():
            self.pools[domain].load_state_dict(state)

    # ----------------------------------------------------------------- evaluation
    def _start_eval(self, split: str) -> None:
        datamodule = self.trainer.datamodule
        self.true_pairs = isinstance(datamodule, UnpairedDataModule) and datamodule.has_true_pairs(split)

    def on_validation_epoch_start(self) -> None:
        self._start_eval("val")

    def on_test_epoch_start(self) -> None:
        self._start_eval("test")

    def _eval_step(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        real_a, real_b = batch
        fake_b, fake_a = self.translate(real_a, "AtoB"), self.translate(real_b, "BtoA")
        cycle = {
            f"{stage}/cycle_l1_A": (self.translate(fake_b, "BtoA") - real_a).abs().mean(),
            f"{stage}/cycle_l1_B": (self.translate(fake_a, "AtoB") - real_b).abs().mean(),
        }
        self.log_dict(cycle, batch_size=len(real_a))
        if self.true_pairs:
            metrics = self.val_metrics if stage == "val" else self.test_metrics
            metrics.update(to_unit_range(fake_b), to_unit_range(real_b))
            self.log_dict(metrics, prog_bar=stage == "val")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")
