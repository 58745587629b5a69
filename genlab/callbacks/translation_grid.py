"""Image grids of translation triples (input | generated | target) for image-to-image models."""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor
from torchvision.utils import save_image

from genlab.callbacks.trackers import log_image
from genlab.capabilities import Translates
from genlab.imaging import comparison_grid, groups_per_row


class TranslationGridCallback(Callback):
    """After each validation epoch, translate a fixed set of validation inputs and write the
    triples to ``<run>/samples/epoch_XXXX.png`` and to TensorBoard (``val/triples``).

    The model must translate (:class:`~genlab.capabilities.Translates`); the datamodule needs
    ``fixed_pairs(split, n)``.

    Args:
        n: number of triples (the first ``n`` validation pairs, without random transforms).
    """

    def __init__(self, n: int = 8) -> None:
        self.n = n
        self.pairs: tuple[Tensor, Tensor] | None = None

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not isinstance(pl_module, Translates):
            return
        if self.pairs is None:
            self.pairs = trainer.datamodule.fixed_pairs("val", self.n)
        inputs, targets = self.pairs
        with torch.no_grad():
            generated = pl_module.translate(inputs.to(pl_module.device))
        grid = comparison_grid([inputs, generated, targets], groups_per_row(len(inputs), 3))
        epoch = trainer.current_epoch + 1
        path = Path(trainer.default_root_dir) / "samples" / f"epoch_{epoch:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        log_image(trainer.loggers, "val/triples", grid, epoch)
