"""How long fitting took and how many training images it saw: ``<run>/timing.json`` (model comparison)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer

from genlab.io import write_json


class FitTimer(Callback):
    """Writes ``timing.json`` at the end of fitting: ``fit_seconds`` (wall clock), ``fit_cpu_seconds``
    (CPU time of this process, all its threads: the figure that does not grow with other jobs' load),
    ``images_seen`` (training images in the batches fitted) and ``global_step``.

    Args:
        run_dir: the run folder.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.images_seen = 0
        self._started: tuple[float, float] | None = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._started = (time.perf_counter(), time.process_time())

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.images_seen += len(batch[0])

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._started is None or not trainer.is_global_zero:
            return
        wall, cpu = self._started
        record = {
            "fit_seconds": round(time.perf_counter() - wall, 2),
            "fit_cpu_seconds": round(time.process_time() - cpu, 2),
            "images_seen": self.images_seen * trainer.world_size,
            "global_step": trainer.global_step,
        }
        write_json(self.run_dir / "timing.json", record)
