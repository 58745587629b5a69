"""Figures of the autoencoders, written to ``<run>/samples/`` each epoch and to TensorBoard.

- :class:`DenoiseGrid` (a denoising autoencoder, :class:`~genlab.capabilities.Restores`):
  ``denoise.png``, rows of a validation image | noisy | denoised at each noise factor, and
  ``iterate.png``, pure noise and the model applied to it again and again (columns after 0, 1, 2, …
  applications). A denoiser trained on one level of noise does not turn noise into digits: the
  iterates settle on a few smooth, high-contrast blobs (on digits: rings and hooks, the same few
  shapes from every start), which is what diffusion models fix by learning every noise level and
  taking small steps from pure noise.
- :class:`ReconstructionGrid` (a VAE, :class:`~genlab.capabilities.Encodes`): ``reconstruct.png``,
  validation images each beside the decoding of its posterior mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor
from torchvision.transforms.v2.functional import to_pil_image

from genlab.capabilities import Encodes, Restores
from genlab.errors import GenlabError
from genlab.imaging import comparison_grid
from genlab.io import atomic_write_bytes


def first_images(trainer: Trainer, split: str, k: int) -> tuple[Tensor, Tensor] | None:
    """The first ``k`` images (in [-1, 1]) and labels of a split of the trainer's datamodule, if it has one."""
    datamodule = trainer.datamodule
    if datamodule is None or not hasattr(datamodule, "dataset"):
        return None
    dataset = datamodule.dataset(split)
    idx = range(min(k, len(dataset)))
    if not len(idx):
        return None
    images = torch.stack([dataset.load_uint8(i) for i in idx]).float().div(127.5).sub(1)
    return images, torch.as_tensor([int(dataset.labels[i]) for i in idx])


def write_figure(trainer: Trainer, path: Path, picture01: Tensor, tag: str) -> None:
    """Save a (C, H, W) picture in [0, 1] atomically and add it to the TensorBoard loggers."""
    buffer = BytesIO()
    to_pil_image(picture01.cpu()).save(buffer, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    for logger in trainer.loggers:
        add_image = getattr(getattr(logger, "experiment", None), "add_image", None)
        if callable(add_image):
            add_image(tag, picture01, global_step=trainer.global_step)


class _EpochFigures(Callback):
    """Calls :meth:`draw` after every ``every_n_epochs``-th epoch and at the end of fitting."""

    def __init__(self, dirpath: str | Path, every_n_epochs: int) -> None:
        if every_n_epochs < 1:
            raise GenlabError(f"{type(self).__name__}: every_n_epochs={every_n_epochs} must be >= 1.")
        self.dirpath = Path(dirpath)
        self.every_n_epochs = every_n_epochs
        self._drawn_at = -1

    def draw(self, trainer: Trainer, model: Any) -> None:
        raise NotImplementedError

    def _draw(self, trainer: Trainer, model: LightningModule) -> None:
        if trainer.is_global_zero and self._drawn_at != trainer.global_step:
            self.draw(trainer, model)
            self._drawn_at = trainer.global_step

    @torch.no_grad()
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._draw(trainer, pl_module)

    @torch.no_grad()
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._draw(trainer, pl_module)


class DenoiseGrid(_EpochFigures):
    """``denoise.png`` and ``iterate.png`` of a denoising autoencoder (module docstring).

    Args:
        dirpath: folder of the figures (``<run>/samples``).
        n: validation images (rows) of denoise.png.
        noise_factors: the levels of denoise.png (None: the model's ``noise_factors``).
        n_iterate: rows of iterate.png.
        iterations: numbers of applications shown as the columns of iterate.png (0 = the noise itself).
        every_n_epochs: epochs between figures (the end of fitting always gets them).
        seed: seed of the noise.
    """

    def __init__(
        self,
        dirpath: str | Path,
        n: int = 8,
        noise_factors: Sequence[float] | None = None,
        n_iterate: int = 8,
        iterations: Sequence[int] = (0, 1, 2, 5, 10, 20, 50, 100),
        every_n_epochs: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(dirpath, every_n_epochs)
        self.iterations = sorted({int(i) for i in iterations})
        if n < 1 or n_iterate < 1 or not self.iterations or self.iterations[0] < 0:
            raise GenlabError("callbacks.denoise_grid: n and n_iterate must be >= 1, iterations numbers >= 0.")
        self.n = n
        self.noise_factors = None if noise_factors is None else [float(f) for f in noise_factors]
        self.n_iterate = n_iterate
        self.seed = seed

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not isinstance(pl_module, Restores):
            raise GenlabError(
                "callbacks.denoise_grid draws a denoising autoencoder's figures, but this model is not one: "
                "remove it (callbacks.denoise_grid=null)."
            )

    def draw(self, trainer: Trainer, model: Restores) -> None:
        generator = torch.Generator().manual_seed(self.seed)
        batch = first_images(trainer, "val", self.n)
        if batch is not None:
            clean = batch[0].to(model.device)
            columns = [clean]
            for factor in self.noise_factors or model.noise_factors:
                noisy = model.corrupt(clean.cpu(), factor, generator).to(model.device)
                columns += [noisy, model.restore(noisy)]
            write_figure(trainer, self.dirpath / "denoise.png", comparison_grid(columns), "dae/denoise")
        x = torch.randn((self.n_iterate, *model.image_shape), generator=generator).to(model.device)
        frames = [x] if self.iterations[0] == 0 else []
        for step in range(1, self.iterations[-1] + 1):
            x = model.restore(x)
            if step in self.iterations:
                frames.append(x)
        write_figure(trainer, self.dirpath / "iterate.png", comparison_grid(frames), "dae/iterate")


class ReconstructionGrid(_EpochFigures):
    """``reconstruct.png`` of a VAE: validation images each beside its reconstruction.

    Args:
        dirpath: folder of the figure (``<run>/samples``).
        n: validation images shown.
        per_row: pairs (image | reconstruction) per row.
        every_n_epochs: epochs between figures (the end of fitting always gets one).
    """

    def __init__(self, dirpath: str | Path, n: int = 32, per_row: int = 8, every_n_epochs: int = 1) -> None:
        super().__init__(dirpath, every_n_epochs)
        if n < 1 or per_row < 1:
            raise GenlabError("callbacks.reconstruction_grid: n and per_row must be >= 1.")
        self.n = n
        self.per_row = per_row

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not isinstance(pl_module, Encodes):
            raise GenlabError(
                "callbacks.reconstruction_grid draws a VAE's reconstructions, but this model has no encoder: "
                "remove it (callbacks.reconstruction_grid=null)."
            )

    def draw(self, trainer: Trainer, model: Encodes) -> None:
        batch = first_images(trainer, "val", self.n)
        if batch is None:
            return
        images, labels = batch
        labels = labels if model.num_classes > 0 else None
        reconstructed = model.decode(model.encode(images, labels), labels)
        picture = comparison_grid([images, reconstructed], self.per_row)
        write_figure(trainer, self.dirpath / "reconstruct.png", picture, "vae/reconstruct")
