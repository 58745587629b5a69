"""StepLogging: step values reach Lightning on logging steps only; epoch means cover every step."""

from __future__ import annotations

import torch
from pytorch_lightning import Callback, Trainer
from torch.utils.data import DataLoader

from genlab.models.step_logging import StepLogging


class Counter(StepLogging):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        value = torch.tensor(float(batch_idx))
        self.log_step({"train/x": value}, prog_bar=("train/x",))
        self.log_step({"train/last": value * 10}, on_epoch=False)
        return self.layer(batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), 0.0)


class Seen(Callback):
    def __init__(self) -> None:
        self.steps: list[float | None] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        value = trainer.callback_metrics.get("train/x_step")
        self.steps.append(None if value is None else float(value))


def test_step_values_on_logging_steps_and_epoch_means_over_all_steps():
    seen = Seen()
    trainer = Trainer(
        max_epochs=1,
        log_every_n_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[seen],
    )
    trainer.fit(Counter(), DataLoader(torch.ones(5, 1), batch_size=1))
    assert seen.steps == [None, 1.0, 1.0, 3.0, 3.0]  # steps 2 and 4 (batch_idx 1 and 3) are logging steps
    assert float(trainer.callback_metrics["train/x"]) == 2.0  # mean of 0..4
    assert float(trainer.callback_metrics["train/last"]) == 40.0  # the epoch's last value, not a logging step
    assert "train/x" in trainer.progress_bar_metrics and "train/last" not in trainer.progress_bar_metrics
