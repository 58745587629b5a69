"""Grids of fixed inputs beside their variations (DAGAN): ``<run>/samples/epoch_XXXX.png``."""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.loggers import TensorBoardLogger
from torch import Tensor
from torchvision.utils import save_image

from genlab.capabilities import Varies
from genlab.imaging import comparison_grid


class VariationGrid(Callback):
    """After each training epoch, vary the first ``n`` validation images ``variations`` times with fixed
    noise and write one row per input (input | variations) to the run's ``samples/`` and TensorBoard."""

    def __init__(self, n: int = 8, variations: int = 7, seed: int = 0) -> None:
        self.n, self.variations, self.seed = n, variations, seed
        self.inputs: Tensor | None = None

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero or not isinstance(pl_module, Varies):
            return
        if self.inputs is None:
            dataset = trainer.datamodule.dataset("val")
            count = min(self.n, len(dataset))
            self.inputs = torch.stack([dataset.load_uint8(i) for i in range(count)]).float().div(127.5).sub(1)
        generator = torch.Generator(pl_module.device).manual_seed(self.seed)
        columns = [self.inputs]
        with torch.no_grad():
            for _ in range(self.variations):
                columns.append(pl_module.vary(self.inputs.to(pl_module.device), generator).cpu())
        grid = comparison_grid(columns)
        epoch = trainer.current_epoch + 1
        path = Path(trainer.default_root_dir) / "samples" / f"epoch_{epoch:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("train/variations", grid, global_step=epoch)
