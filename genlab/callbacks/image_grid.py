"""Fixed-noise sample grids during training: ``<run>/samples/epoch_XXXX.png``, TensorBoard, ``progress.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor
from torchvision.utils import make_grid, save_image

from genlab.callbacks.trackers import log_image
from genlab.capabilities import Generates, Interpolates, generates_conditionally
from genlab.errors import GenlabError
from genlab.imaging import square_nrow, to_unit_range


class ImageGrid(Callback):
    """Render the same samples after every epoch, so grids of different epochs are comparable.

    Model configs that want it add it (``configs/model/gan.yaml``); it works with any model that
    generates (:class:`~genlab.capabilities.Generates`). For a model with a latent space
    (:class:`~genlab.capabilities.Interpolates`, e.g. GANs) the latents are drawn once and decoded
    every epoch; other generators get ``generate(n, labels, generator=<same seed>)``. Conditional
    models get fixed class-ordered labels: one row per class. Latents and labels are kept in the
    checkpoint, so a resumed run keeps drawing the same grid. At the end of fitting, ``progress.png``
    puts the grids of a few epochs (first, middle ones, last) side by side.

    Args:
        dirpath: folder of the grids (``<run>/samples``).
        n: images per grid (conditional models: ``per_class`` per class instead).
        per_class: images per row (class) for conditional models.
        every_n_epochs: render every this many epochs (and always after the last).
        progress_grids: how many epochs ``progress.png`` shows.
        seed: seed of the fixed noise.
    """

    def __init__(
        self,
        dirpath: str | Path,
        n: int = 64,
        per_class: int = 8,
        every_n_epochs: int = 1,
        progress_grids: int = 5,
        seed: int = 1234,
    ) -> None:
        self.dirpath = Path(dirpath)
        self.n = n
        self.per_class = per_class
        self.every_n_epochs = max(1, every_n_epochs)
        self.progress_grids = progress_grids
        self.seed = seed
        self.noise: Tensor | None = None
        self.labels: Tensor | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not isinstance(pl_module, Generates):
            raise GenlabError(
                f"callbacks.image_grid draws samples, but model={getattr(pl_module, 'config_name', '?')} does not "
                "generate images: remove callbacks.image_grid (callbacks.image_grid=null)."
            )

    def _fixed_inputs(self, pl_module: Generates) -> None:
        if self.noise is not None or self.labels is not None:
            return
        count = self.n
        if generates_conditionally(pl_module):
            self.labels = torch.arange(pl_module.num_classes).repeat_interleave(self.per_class)
            count = len(self.labels)
        if isinstance(pl_module, Interpolates):
            generator = torch.Generator(pl_module.device).manual_seed(self.seed)
            self.noise = pl_module.sample_latent(count, generator).cpu()

    def render(self, pl_module: Generates) -> Tensor:
        """The fixed-noise samples as one grid image (C, H, W) in [0, 1]."""
        self._fixed_inputs(pl_module)
        labels = None if self.labels is None else self.labels.to(pl_module.device)
        count = self.n if labels is None else len(labels)
        if self.noise is not None and isinstance(pl_module, Interpolates):
            images = pl_module.decode(self.noise.to(pl_module.device), labels)
        else:
            generator = torch.Generator(pl_module.device).manual_seed(self.seed)
            images = pl_module.generate(count, labels=labels, generator=generator)
        nrow = self.per_class if labels is not None else square_nrow(count)
        return make_grid(to_unit_range(images.detach().float()).cpu(), nrow=nrow, padding=2)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        last = is_last_epoch(trainer, epoch)
        if not trainer.is_global_zero:
            return
        if epoch % self.every_n_epochs and not last and not trainer.fast_dev_run:
            return
        grid = self.render(pl_module)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        save_image(grid, self.dirpath / f"epoch_{epoch:04d}.png")
        log_image(trainer.loggers, "samples", grid, trainer.global_step)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            write_progress(self.dirpath, self.progress_grids)

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise, "labels": self.labels}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.noise = state_dict.get("noise")
        self.labels = state_dict.get("labels")


def is_last_epoch(trainer: Trainer, epoch: int) -> bool:
    """Whether ``epoch`` (1-based) is the last of ``trainer.max_epochs``; never under an unlimited budget
    (max_epochs -1 or None, as time and step budgets use)."""
    return trainer.max_epochs is not None and 0 <= trainer.max_epochs <= epoch


def pick_epochs(count: int, k: int) -> list[int]:
    """Indices of ``k`` evenly spread items among ``count`` (always the first and the last)."""
    if count <= k:
        return list(range(count))
    return sorted({round(i * (count - 1) / (k - 1)) for i in range(k)})


def write_progress(dirpath: Path, k: int = 5) -> Path | None:
    """``progress.png``: the grids of ``k`` epochs (first, middle ones, last) side by side, each titled."""
    grids = sorted(dirpath.glob("epoch_*.png"))
    if not grids:
        return None
    chosen = [grids[i] for i in pick_epochs(len(grids), max(1, k))]
    images = [Image.open(path).convert("RGB") for path in chosen]
    title, gap = 14, 6
    width = sum(image.width for image in images) + gap * (len(images) - 1)
    height = max(image.height for image in images) + title
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for path, image in zip(chosen, images, strict=True):
        canvas.paste(image, (x, title))
        draw.text((x + 2, 1), f"epoch {int(path.stem.split('_')[1])}", fill="black")
        x += image.width + gap
    out = dirpath / "progress.png"
    canvas.save(out)
    return out
