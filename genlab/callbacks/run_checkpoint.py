"""Per-epoch checkpoints (best + last) plus ``last.ckpt`` every N training steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from genlab.errors import GenlabError


class RunCheckpoint(ModelCheckpoint):
    """Lightning's :class:`ModelCheckpoint` (per epoch: ``best.ckpt`` by the monitored metric, when the
    model has one, and ``last.ckpt``) that also refreshes ``last.ckpt`` every ``every_n_train_steps`` steps.

    Lightning refuses ``every_n_train_steps`` together with per-epoch saving, and a long epoch
    would otherwise lose everything since its start to a crash. Writes go through the trainer's
    checkpoint I/O (atomic: temporary file + rename), so a kill during a write keeps the previous one.

    Args:
        every_n_train_steps: step interval of the extra ``last.ckpt`` writes; null or 0 turns them off.
        **kwargs: :class:`ModelCheckpoint` arguments (per-epoch triggers).
    """

    def __init__(self, every_n_train_steps: int | None = None, **kwargs: Any) -> None:
        if kwargs.get("monitor") is None:
            # No metric to rank epochs by (GANs): keep only the latest, as last.ckpt; a best.ckpt would copy it.
            kwargs.update(filename="last", save_last=False, save_top_k=1)
        super().__init__(**kwargs)
        if every_n_train_steps is not None and every_n_train_steps < 0:
            raise GenlabError(f"callbacks.checkpoint.every_n_train_steps={every_n_train_steps} must be >= 0 or null.")
        self.last_every_n_train_steps = every_n_train_steps or 0
        self._last_step_written = -1

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        every, step = self.last_every_n_train_steps, trainer.global_step
        if not every or step % every or step == self._last_step_written or trainer.sanity_checking:
            return
        if trainer.fast_dev_run or self.dirpath is None:
            return
        # A GAN's discriminator-only batches leave global_step unchanged: write once per step.
        self._last_step_written = step
        last = Path(self.dirpath) / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"
        trainer.save_checkpoint(last, weights_only=self.save_weights_only)
