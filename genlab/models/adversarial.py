"""The toolkit every adversarial model shares (GANs, pix2pix, CycleGAN).

- :class:`AdversarialModule`: manual optimization where ``trainer.global_step`` (and so
  ``trainer.max_steps``) counts generator updates only, and DiffAugment / ADA options
  (:mod:`genlab.models.diffaug`) for subclasses that wire them (``supports_diffaug``). Lightning counts every
  ``LightningOptimizer.step()`` as a training step (Lightning-AI/pytorch-lightning#17958), so the
  discriminator's updates go through the public ``Strategy.optimizer_step`` on the wrapped
  optimizer: the precision plugin still applies (gradient scaling under 16-bit), the step counter
  does not move.
- the finite-loss check, with the loss, step and epoch in the message;
- :class:`LinearDecay` and :func:`decay_plan`: the pix2pix/CycleGAN learning-rate rule (constant,
  then linearly down to 0).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from pytorch_lightning.core.optimizer import LightningOptimizer
from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.models.base import GenlabModule, check_finite
from genlab.models.diffaug import DiscriminatorAugment, build_discriminator_augment

log = logging.getLogger("genlab")


def _no_closure() -> None:
    """The closure of a manual-optimization step: the gradients are already there."""


@contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """Stop gradients into ``module``'s parameters (D during the generator's update)."""
    module.requires_grad_(False)
    try:
        yield module
    finally:
        module.requires_grad_(True)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Temporarily put ``module`` in eval mode (BatchNorm uses its running statistics)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


class AdversarialModule(GenlabModule):
    """Base of the adversarial models: manual optimization with generator-counted steps.

    Subclasses call :meth:`discriminator_update` and :meth:`generator_update` in ``training_step``;
    those with ``supports_diffaug`` pass what D sees through :meth:`augment` (real and fake in the D
    step, fake in the G step) and D's verdicts on real images to :meth:`observe_real`.

    Args:
        diffaug: DiffAugment policy (``"translation,cutout"`` or a list: any of color, translation, cutout);
            null: off, and training is exactly as without these options.
        diffaug_p: probability that an image is augmented, or ``"adaptive"`` (ADA's controller).
        diffaug_translation_ratio, diffaug_cutout_ratio, diffaug_brightness, diffaug_saturation,
            diffaug_contrast: DiffAugment's strengths (:class:`~genlab.augment.diffaug.DiffAugment`).
        ada_target, ada_speed_images, ada_interval, ada_p_init: the adaptive controller
            (:class:`~genlab.augment.ada.AdaptiveAugmentProbability`).
        **meta: the model config's ``name``, ``epochs``, ``monitor``.
    """

    supports_diffaug: ClassVar[bool] = False
    divergence_advice: ClassVar[str] = (
        "Try a lower learning rate (model.optimizer_g.lr / model.optimizer_d.lr) or model/loss=wgan_gp."
    )

    def __init__(
        self,
        diffaug: str | Sequence[str] | None = None,
        diffaug_p: float | str = 1.0,
        diffaug_translation_ratio: float = 0.125,
        diffaug_cutout_ratio: float = 0.5,
        diffaug_brightness: float = 0.5,
        diffaug_saturation: float = 1.0,
        diffaug_contrast: float = 0.5,
        ada_target: float = 0.6,
        ada_speed_images: int = 20_000,
        ada_interval: int = 4,
        ada_p_init: float = 0.0,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        self.automatic_optimization = False
        if diffaug is not None and not self.supports_diffaug:
            raise GenlabError(f"model.diffaug={diffaug}: model={self.config_name} does not apply DiffAugment.")
        strengths = {
            "translation_ratio": diffaug_translation_ratio,
            "cutout_ratio": diffaug_cutout_ratio,
            "brightness": diffaug_brightness,
            "saturation": diffaug_saturation,
            "contrast": diffaug_contrast,
        }
        ada = {"target": ada_target, "speed_images": ada_speed_images, "interval": ada_interval, "p_init": ada_p_init}
        self.d_augment: DiscriminatorAugment | None = build_discriminator_augment(diffaug, diffaug_p, strengths, ada)

    def check_adaptive(self, realness: Tensor | None, loss_name: str) -> None:
        """Refuse ``diffaug_p=adaptive`` when D's outputs (``realness`` of a sample batch) carry no real/fake sign."""
        if self.d_augment is not None and self.d_augment.adaptive and realness is None:
            raise GenlabError(
                f"model.diffaug_p=adaptive needs D's real/fake sign (ADA's r_t = E[sign(D(x_real))]), but with "
                f"model/loss={loss_name} the critic's value has no fixed zero: use a fixed probability "
                "(e.g. model.diffaug_p=0.5) or model/loss=bce|hinge."
            )

    def augment(self, *images: Tensor) -> Tensor | tuple[Tensor, ...]:
        """What D sees of ``images``: DiffAugment'ed (one draw per image, shared across the tensors of
        one call) when ``model.diffaug`` is set, else the images themselves."""
        if self.d_augment is None:
            return images[0] if len(images) == 1 else images
        return self.d_augment(*images)

    def observe_real(self, realness: Tensor | None) -> dict[str, Tensor]:
        """Feed D's signed verdicts on a batch of (augmented) real images to ADA's controller; log
        ``train/aug_p`` (the step's value, when ``model.diffaug`` is set); return ``train/r_t``, the batch's
        mean sign (ADA's overfitting heuristic), to log with the step's other metrics (empty without a sign)."""
        if self.d_augment is not None:
            if realness is not None:
                self.d_augment.observe(realness)
            self.log_step({"train/aug_p": torch.tensor(self.d_augment.p, device=self.device)}, on_epoch=False)
        return {} if realness is None else {"train/r_t": torch.sign(realness.detach()).mean()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.d_augment is not None:
            checkpoint["diffaug"] = self.d_augment.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.d_augment is not None:
            self.d_augment.load_state_dict(checkpoint.get("diffaug", {}))

    def check_loss(self, name: str, loss: Tensor) -> None:
        """Stop the run with a clear message when ``loss`` is NaN or infinite."""
        check_finite(loss, name, self.global_step, self.current_epoch, self.divergence_advice)

    def discriminator_update(self, optimizer: LightningOptimizer, loss: Tensor, name: str = "train/loss_d") -> None:
        """Backward ``loss`` and step ``optimizer`` without advancing ``global_step``."""
        self.check_loss(name, loss)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=_no_closure, model=self)

    def generator_update(self, optimizer: LightningOptimizer, loss: Tensor, name: str = "train/loss_g") -> None:
        """Backward ``loss`` and step ``optimizer``: one training step (``global_step`` + 1)."""
        self.check_loss(name, loss)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()


@dataclass
class LinearDecay:
    """LR factor: 1 for ``n_epochs`` epochs, then linearly down towards 0 over ``n_epochs_decay``
    epochs (the official pix2pix/CycleGAN ``lambda_rule``). A callable object, so LambdaLR saves it."""

    n_epochs: int
    n_epochs_decay: int

    def __call__(self, epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - self.n_epochs) / (self.n_epochs_decay + 1)


def decay_plan(n_epochs: int | None, n_epochs_decay: int | None, max_epochs: int | None) -> LinearDecay:
    """(constant epochs, decay epochs), filling unset ones from ``trainer.max_epochs`` (half and half)."""
    if max_epochs is None or max_epochs < 0:
        return LinearDecay(n_epochs if n_epochs is not None else 10**9, n_epochs_decay or 0)
    if n_epochs is None and n_epochs_decay is None:
        n_epochs = math.ceil(max_epochs / 2)
    if n_epochs is None:
        n_epochs = max(0, max_epochs - n_epochs_decay)
    if n_epochs_decay is None:
        n_epochs_decay = max(0, max_epochs - n_epochs)
    if n_epochs + n_epochs_decay != max_epochs:
        log.warning(
            "model.n_epochs=%d + model.n_epochs_decay=%d differs from trainer.max_epochs=%d.",
            n_epochs,
            n_epochs_decay,
            max_epochs,
        )
    return LinearDecay(n_epochs, n_epochs_decay)
