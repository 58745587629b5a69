"""The toolkit every adversarial model shares (GANs, pix2pix, CycleGAN).

- :class:`AdversarialModule`: manual optimization where ``trainer.global_step`` (and so
  ``trainer.max_steps``) counts generator updates only. Lightning counts every
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from pytorch_lightning.core.optimizer import LightningOptimizer
from torch import Tensor, nn

from genlab.models.base import GenlabModule, check_finite

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

    Subclasses call :meth:`discriminator_update` and :meth:`generator_update` in ``training_step``.
    """

    divergence_advice: ClassVar[str] = (
        "Try a lower learning rate (model.optimizer_g.lr / model.optimizer_d.lr) or model/loss=wgan_gp."
    )

    def __init__(self, **meta: Any) -> None:
        super().__init__(**meta)
        self.automatic_optimization = False

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
