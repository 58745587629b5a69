"""The base of genlab's LightningModules: the model config's meta keys and optimizer factories.

A model config node (``configs/model/<name>.yaml``) is a plain Hydra object:
``hydra.utils.instantiate(cfg.model)`` builds the module. Besides the module's own arguments the node
carries three meta keys that the run uses (the run folder's name, the checkpoint monitor and the
default epoch budget); every genlab module accepts them here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from genlab.errors import GenlabError, TrainingDivergedError
from genlab.models.step_logging import StepLogging

OptimizerFactory = Callable[..., torch.optim.Optimizer]


class GenlabModule(StepLogging):
    """A LightningModule built from a genlab model config.

    Args:
        name: the model config's name (``dcgan``, ``ddpm``, ...), used in messages.
        epochs: the model's default epoch budget (``trainer.max_epochs`` interpolates it).
        monitor: ``{metric, mode}`` of the best checkpoint (read by the checkpoint callback).
    """

    def __init__(self, name: str = "", epochs: int | None = None, monitor: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.config_name = name or type(self).__name__
        self.default_epochs = epochs
        self.monitor = dict(monitor or {})

    def setup(self, stage: str) -> None:
        """Check the model against the data it is given, before the first step (:meth:`check_data`)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            self.check_data(datamodule)

    def check_data(self, datamodule: Any) -> None:
        """Raise a GenlabError naming the option when the model cannot train on ``datamodule``."""

    def images_per_update(self, batch_size: int) -> int:
        """Training images in one optimizer step whose per-process batch has ``batch_size`` images."""
        return batch_size * (self.trainer.world_size if self._trainer is not None else 1)


def check_image_data(name: str, image_shape: tuple[int, ...], num_classes: int, datamodule: Any) -> None:
    """The checks of a model that makes or reads images of ``image_shape`` with ``num_classes`` labels (0: none)."""
    have = (datamodule.channels, datamodule.image_size, datamodule.image_size)
    if tuple(image_shape) != have:
        raise GenlabError(
            f"model={name} was built for images of shape {tuple(image_shape)} (channels, height, width) but "
            f"data={datamodule.name} delivers {have}: keep the model's ${{data.channels}} and ${{data.image_size}} "
            "interpolations (or set data.channels / data.image_size instead)."
        )
    if num_classes > 0 and num_classes != datamodule.num_classes:
        raise GenlabError(
            f"model={name} was built for {num_classes} classes but data={datamodule.name} has "
            f"{datamodule.num_classes}: keep model.num_classes=${{data.num_classes}}."
        )


def check_finite(loss: torch.Tensor, name: str, step: int, epoch: int, advice: str) -> None:
    """Raise :class:`~genlab.errors.TrainingDivergedError` naming the loss, step and epoch when it is NaN/inf."""
    value = float(loss.detach())
    if value != value or value in (float("inf"), float("-inf")):
        raise TrainingDivergedError(
            f"training diverged: {name} became {value} at step {step} (epoch {epoch}); the last good checkpoint "
            f"is kept in checkpoints/. {advice}"
        )


def make_optimizer(factory: OptimizerFactory, params: Any, option: str) -> torch.optim.Optimizer:
    """``factory(params=...)``, with torch's ValueError for a bad setting (lr < 0, ...) turned into one message."""
    try:
        return factory(params=params)
    except ValueError as err:
        raise GenlabError(f"model.{option}: {err} Fix the optimizer setting (e.g. model.{option}.lr=0.0002).") from None
