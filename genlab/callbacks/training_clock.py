"""Training time as metrics: CPU seconds (``time.process_time``, all threads of the process) and wall seconds."""

from __future__ import annotations

import time

from pytorch_lightning import Callback, LightningModule, Trainer


class TrainingClock(Callback):
    """Logs, after each training epoch (validation included in the next one), the time since training started:
    ``time/train_cpu_s`` and ``time/train_wall_s``, and ``time/epoch_cpu_s``, their mean CPU seconds per epoch.

    CPU seconds do not depend on other processes sharing the cores (wall seconds do); with ``threads=1``
    they count one core's work. A resumed run counts from its resumption.
    """

    def __init__(self) -> None:
        self.started: tuple[float, float] | None = None
        self.epochs = 0

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.started = (time.process_time(), time.perf_counter())
        self.epochs = 0

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.started is None:
            return
        self.epochs += 1
        cpu = time.process_time() - self.started[0]
        wall = time.perf_counter() - self.started[1]
        pl_module.log_dict(
            {"time/train_cpu_s": cpu, "time/train_wall_s": wall, "time/epoch_cpu_s": cpu / self.epochs},
            on_step=False,
            on_epoch=True,
        )
