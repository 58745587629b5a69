"""Image grids of translation triples (input | generated | target) for image-to-image models."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.loggers import TensorBoardLogger
from torch import Tensor
from torchvision.utils import make_grid, save_image

from genlab.models.base import to_unit_range


def comparison_grid(columns: Sequence[Tensor], per_row: int = 1) -> Tensor:
    """A grid (C, H, W) in [0, 1] showing the i-th image of every column side by side, ``per_row``
    such groups a row. Images are in [-1, 1]; 1-channel images beside RGB ones are repeated to RGB."""
    channels = max(x.shape[1] for x in columns)
    parts = [to_unit_range(x.detach().float().cpu()).expand(-1, channels, -1, -1) for x in columns]
    interleaved = torch.stack(parts, dim=1).flatten(0, 1)
    return make_grid(interleaved, nrow=len(columns) * per_row, padding=2, pad_value=1.0)


def triples_grid(inputs: Tensor, generated: Tensor, targets: Tensor, per_row: int = 1) -> Tensor:
    """A grid of (input | generated | target) triples, ``per_row`` triples a row."""
    return comparison_grid([inputs, generated, targets], per_row)


def triples_per_row(n: int) -> int:
    """Groups per grid row for a roughly square grid of ``n`` triples."""
    return max(1, round(math.sqrt(n / 3)))


class TranslationGridCallback(Callback):
    """After each validation epoch, translate a fixed set of validation inputs and write the
    triples to ``<run>/samples/epoch_XXXX.png`` and to TensorBoard (``val/triples``).

    The model needs ``translate(A)``; the datamodule needs ``fixed_pairs(split, n)``.

    Args:
        n: number of triples (the first ``n`` validation pairs, without random transforms).
    """

    def __init__(self, n: int = 8) -> None:
        self.n = n
        self.pairs: tuple[Tensor, Tensor] | None = None

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        if self.pairs is None:
            self.pairs = trainer.datamodule.fixed_pairs("val", self.n)
        inputs, targets = self.pairs
        with torch.no_grad():
            generated = pl_module.translate(inputs.to(pl_module.device))
        grid = triples_grid(inputs, generated, targets, triples_per_row(len(inputs)))
        epoch = trainer.current_epoch + 1
        path = Path(trainer.default_root_dir) / "samples" / f"epoch_{epoch:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/triples", grid, global_step=epoch)
