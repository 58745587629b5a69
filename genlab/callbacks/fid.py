"""Logs ``val/fid`` of a generative model every few epochs during training."""

from __future__ import annotations

import logging
from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer

from genlab.metrics.evaluate import GenerativeScorer

log = logging.getLogger("genlab")


class PeriodicFID(Callback):
    """Scores the model with ``scorer`` at the end of every ``every_n_epochs``-th training epoch.

    Args:
        scorer: a :class:`GenerativeScorer` built before training (real statistics ready).
        every_n_epochs: scoring period in epochs.
        seed: seed of the generated samples (the same every time, so curves are comparable).
        options: generation options passed to ``generate`` (e.g. a short diffusion sampler).
    """

    def __init__(
        self, scorer: GenerativeScorer, every_n_epochs: int, seed: int = 0, options: dict[str, Any] | None = None
    ) -> None:
        self.scorer = scorer
        self.every_n_epochs = every_n_epochs
        self.seed = seed
        self.options = options or {}

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs or trainer.sanity_checking:
            return
        metrics, _ = self.scorer.score(pl_module, seed=self.seed, options=self.options)
        pl_module.log("val/fid", metrics["fid"], on_epoch=True, prog_bar=True)
        log.info("epoch %d: val/fid=%.4f (%d samples)", trainer.current_epoch, metrics["fid"], self.scorer.n)
