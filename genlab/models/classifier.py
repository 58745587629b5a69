"""The CNN baseline as a LightningModule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from genlab.errors import GenlabError
from genlab.models.base import GenlabModule, OptimizerFactory, check_finite, make_optimizer


class ClassifierModule(GenlabModule):
    """Image classifier trained with cross-entropy (hard or mixed/soft labels).

    Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``test/loss``, ``test/acc``.

    Args:
        net: the classifier network (logits).
        optimizer: a partial optimizer (``_partial_: true``) called with the parameters.
        num_classes: number of classes.
        scheduler: optional partial LR scheduler called with the optimizer.
        **meta: the model config's ``name``, ``epochs``, ``monitor``.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        num_classes: int,
        scheduler: Callable[..., Any] | None = None,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.num_classes = num_classes
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def check_data(self, datamodule: Any) -> None:
        if datamodule.num_classes != self.num_classes:
            raise GenlabError(
                f"model={self.config_name} was built for {self.num_classes} classes but data={datamodule.name} has "
                f"{datamodule.num_classes}: keep model.num_classes=${{data.num_classes}}."
            )

    def classify(self, images: Tensor) -> Tensor:
        """Logits (N, num_classes) of images in [-1, 1] (capability Classifies)."""
        return self.net(images)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        check_finite(
            loss, "train/loss", self.global_step, self.current_epoch, "Try a lower learning rate (model.optimizer.lr)."
        )
        hard = labels.argmax(dim=1) if labels.ndim == 2 else labels
        self.train_acc.update(logits.detach(), hard)
        self.log_step({"train/loss": loss}, prog_bar=True, on_epoch=False)
        return loss

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log("train/acc", self.train_acc.compute())
        self.train_acc.reset()

    def _eval_step(self, batch: tuple[Tensor, Tensor], stage: str, metric: MulticlassAccuracy) -> None:
        images, labels = batch
        logits = self(images)
        metric(logits, labels)
        self.log(f"{stage}/loss", F.cross_entropy(logits, labels), sync_dist=True)
        self.log(f"{stage}/acc", metric, prog_bar=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_acc)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_acc)

    def configure_optimizers(self) -> Any:
        optimizer = make_optimizer(self.optimizer_factory, self.parameters(), "optimizer")
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer=optimizer)}
