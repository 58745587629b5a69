"""Marks a run that stops early in its ``metrics.json`` (interrupted, diverged or failed)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning import Callback

from genlab.errors import GenlabError, TrainingDivergedError
from genlab.io import scalar_metrics, write_json


class RunStatus(Callback):
    """On an exception during training, write ``{"status": ..., "global_step": ...}`` and the last
    logged metrics to ``<run_dir>/metrics.json``; checkpoints already written stay untouched.

    Args:
        run_dir: the run folder.
    """

    def __init__(self, run_dir: str) -> None:
        self.run_dir = Path(run_dir)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if not trainer.is_global_zero:
            return
        if isinstance(exception, KeyboardInterrupt):
            status = "interrupted"
        elif isinstance(exception, TrainingDivergedError):
            status = "diverged"
        else:
            status = "failed"
        metrics = scalar_metrics(trainer.callback_metrics)
        error = (
            str(exception)
            if isinstance(exception, GenlabError)
            else f"{type(exception).__name__}: " + (str(exception).splitlines()[0] if str(exception) else "")
        )
        write_json(
            self.run_dir / "metrics.json",
            {**metrics, "status": status, "global_step": trainer.global_step, "error": error[:500]},
        )
