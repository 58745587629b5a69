"""Marks a run that stops early in its ``metrics.json`` (interrupted, diverged or failed)."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning import Callback
from pytorch_lightning.utilities.exceptions import SIGTERMException

from genlab.errors import GenlabError, TrainingDivergedError, message_of
from genlab.io import scalar_metrics, write_json

STOPPED_BY = {SIGTERMException: "SIGTERM", KeyboardInterrupt: "Ctrl-C (SIGINT)"}


def stop_status(exception: BaseException) -> str:
    """``interrupted`` (a signal), ``diverged`` (NaN/inf loss) or ``failed``."""
    if isinstance(exception, KeyboardInterrupt | SIGTERMException):
        return "interrupted"
    return "diverged" if isinstance(exception, TrainingDivergedError) else "failed"


class RunStatus(Callback):
    """On an exception during training, write ``{"status": ..., "global_step": ...}`` and the last
    logged metrics to ``<run_dir>/metrics.json``. An interrupted single-process run also writes
    ``checkpoints/last.ckpt`` at the step it reached, so ``train resume=`` loses nothing; other
    checkpoints stay untouched.

    Args:
        run_dir: the run folder.
    """

    def __init__(self, run_dir: str) -> None:
        self.run_dir = Path(run_dir)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        status = stop_status(exception)
        if status == "interrupted" and trainer.world_size == 1 and trainer.global_step > 0:
            # the full state (optimizers, loops), so that resume= continues where the run stopped
            trainer.save_checkpoint(self.run_dir / "checkpoints" / "last.ckpt", weights_only=False)
        if not trainer.is_global_zero:
            return
        record = {**scalar_metrics(trainer.callback_metrics), "status": status, "global_step": trainer.global_step}
        if status == "interrupted":
            record["stopped_by"] = next(v for k, v in STOPPED_BY.items() if isinstance(exception, k))
        else:
            text = message_of(exception)
            first = text.splitlines()[0] if text else ""
            record["error"] = text if isinstance(exception, GenlabError) else f"{type(exception).__name__}: {first}"
            record["error"] = record["error"][:500]
        write_json(self.run_dir / "metrics.json", record)
