"""Image grids of translation triples for image-to-image models.

- paired translators (pix2pix): input A | G(A) | target B;
- two-way unpaired translators (CycleGAN): A | G(A) | F(G(A)) triples, then B | F(B) | G(F(B)).
"""

from __future__ import annotations

from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor
from torchvision.utils import save_image

from genlab.callbacks.trackers import log_image
from genlab.capabilities import Translates
from genlab.imaging import comparison_grid, groups_per_row


def _rgb_like(images: Tensor, channels: int) -> Tensor:
    """``images`` with ``channels`` channels (1-channel images repeated), to stack with other domains."""
    return images.expand(-1, channels, -1, -1) if images.shape[1] != channels else images


def translation_triples(model: Translates, inputs: Tensor, targets: Tensor) -> list[Tensor]:
    """The three columns of the grid: (A, G(A), B) for a paired translator, else (A | B, G(A) | F(B),
    F(G(A)) | G(F(B))) with ``inputs`` the A images and ``targets`` the B images."""
    if model.paired:
        return [inputs, model.translate(inputs), targets]
    fake_b, fake_a = model.translate(inputs, "AtoB"), model.translate(targets, "BtoA")
    rows = [
        (inputs, targets),
        (fake_b, fake_a),
        (model.translate(fake_b, "BtoA"), model.translate(fake_a, "AtoB")),
    ]
    channels = max(inputs.shape[1], targets.shape[1])
    return [torch.cat([_rgb_like(a, channels), _rgb_like(b, channels)]) for a, b in rows]


class TranslationGridCallback(Callback):
    """After each validation epoch, translate a fixed set of validation inputs and write the
    triples (see the module docstring) to ``<run>/samples/epoch_XXXX.png`` and to TensorBoard (``val/triples``).

    The model must translate (:class:`~genlab.capabilities.Translates`); the datamodule needs
    ``fixed_pairs(split, n)`` (the first ``n`` images of A and of B).

    Args:
        n: number of triples per direction (the first ``n`` validation images, without random transforms).
    """

    def __init__(self, n: int = 8) -> None:
        self.n = n
        self.pairs: tuple[Tensor, Tensor] | None = None

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not isinstance(pl_module, Translates):
            return
        if self.pairs is None:
            self.pairs = trainer.datamodule.fixed_pairs("val", self.n)
        inputs, targets = (images.to(pl_module.device) for images in self.pairs)
        with torch.no_grad():
            columns = translation_triples(pl_module, inputs, targets)
        grid = comparison_grid(columns, groups_per_row(len(columns[0]), 3))
        epoch = trainer.current_epoch + 1
        path = Path(trainer.default_root_dir) / "samples" / f"epoch_{epoch:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
        log_image(trainer.loggers, "val/triples", grid, epoch)
