"""Figures of a diffusion run, written to ``<run>/samples/`` and to TensorBoard.

- ``forward.png``: training images (rows) noised by q(x_t | x_0) at t = 0, 100, …, T − 1 (columns);
- ``reverse.png``: x_t along sampling trajectories (rows) from pure noise (left) to the sample (right);
- ``reconstruct.png``: rows original | noised to t | denoised back from t;
- ``inpaint.png``: rows test image | centre box masked (red) | inpainted by RePaint on DDIM, guided by the label;
- ``epoch_XXXX.png``: a DDIM sample grid from fixed noise (one row per class for conditional models).

The model must be a diffusion model (:class:`~genlab.capabilities.Denoises`).
"""

from __future__ import annotations

import logging
from io import BytesIO
from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from torch import Tensor
from torchvision.transforms.v2.functional import to_pil_image
from torchvision.utils import make_grid

from genlab.callbacks.image_grid import is_last_epoch
from genlab.callbacks.trackers import log_image
from genlab.capabilities import Denoises
from genlab.diffusion.inpainting import inpaint
from genlab.diffusion.masks import center
from genlab.diffusion.samplers import Sampler
from genlab.errors import GenlabError
from genlab.imaging import to_unit_range
from genlab.io import atomic_write_bytes

log = logging.getLogger("genlab")


def frame_times(timesteps: int, frames: int) -> list[int]:
    """``frames`` timesteps from 0 to T − 1: multiples of T // (frames − 1), then T − 1 (0, 100, …, 900, 999)."""
    step = timesteps // max(1, frames - 1)
    if frames < 2 or step < 1:
        return sorted(set(range(0, timesteps, max(1, step))) | {timesteps - 1})
    return [step * i for i in range(frames - 1)] + [timesteps - 1]


def grid_png(images: Tensor, nrow: int) -> tuple[bytes, Tensor]:
    """PNG bytes and the (3, H, W) float grid of images in [-1, 1]."""
    grid = make_grid(to_unit_range(images.float().cpu()), nrow=nrow, padding=2, pad_value=1.0)
    buffer = BytesIO()
    to_pil_image(grid).save(buffer, format="PNG")
    return buffer.getvalue(), grid


class DiffusionVisualizer(Callback):
    """Writes the forward, reverse, reconstruction and per-epoch figures of a diffusion model.

    Args:
        dirpath: folder of the figures (``<run>/samples``).
        n: images in the per-epoch grid (conditional: whole rows of one class each).
        grid_steps: DDIM steps of the per-epoch grid.
        every_n_epochs: epochs between grids (the last epoch always gets one).
        min_steps_between: training steps at least between two grids, so that a small dataset's short
            epochs do not spend a quarter of a time budget on grids (0: every ``every_n_epochs``).
        seed: seed of the fixed noise.
        n_forward: training images in forward.png.
        n_reverse: trajectories in reverse.png.
        reverse_sampler: ``ddpm`` (all T steps) or ``ddim`` (``grid_steps``) for reverse.png.
        frames: columns of forward.png and reverse.png.
        n_reconstruct: images in reconstruct.png.
        reconstruct_t: noise level of reconstruct.png as a share of T (denoised back with DDPM).
        n_inpaint: test images in inpaint.png (0: none); RePaint with the CPU/GPU default r on DDIM-``grid_steps``.
        inpaint_mask_size: side of inpaint.png's centre box as a share of the image side.
    """

    def __init__(
        self,
        dirpath: str,
        n: int = 64,
        grid_steps: int = 20,
        every_n_epochs: int = 1,
        min_steps_between: int = 0,
        seed: int = 0,
        n_forward: int = 6,
        n_reverse: int = 4,
        reverse_sampler: str = "ddpm",
        frames: int = 11,
        n_reconstruct: int = 8,
        reconstruct_t: float = 0.5,
        n_inpaint: int = 8,
        inpaint_mask_size: float = 0.5,
    ) -> None:
        if n < 1 or grid_steps < 1 or every_n_epochs < 1 or frames < 1 or min_steps_between < 0:
            raise GenlabError(
                "callbacks.diffusion_viz: n, grid_steps, every_n_epochs and frames must be ≥ 1, min_steps_between ≥ 0."
            )
        if not 0 < reconstruct_t <= 1:
            raise GenlabError(f"callbacks.diffusion_viz.reconstruct_t={reconstruct_t} must be in (0, 1].")
        if n_inpaint < 0 or not 0 < inpaint_mask_size <= 1:
            raise GenlabError("callbacks.diffusion_viz: n_inpaint must be ≥ 0 and inpaint_mask_size in (0, 1].")
        if reverse_sampler not in ("ddpm", "ddim"):
            raise GenlabError(f"callbacks.diffusion_viz.reverse_sampler={reverse_sampler} is not ddpm or ddim.")
        self.dirpath = Path(dirpath)
        self.n = n
        self.grid_steps = grid_steps
        self.every_n_epochs = every_n_epochs
        self.min_steps_between = min_steps_between
        self.seed = seed
        self.n_forward = n_forward
        self.n_reverse = n_reverse
        self.reverse_sampler = reverse_sampler
        self.frames = frames
        self.n_reconstruct = n_reconstruct
        self.reconstruct_t = reconstruct_t
        self.n_inpaint = n_inpaint
        self.inpaint_mask_size = inpaint_mask_size
        self._last_grid_epoch = 0
        self._last_grid_step: int | None = None

    # ----- helpers ------------------------------------------------------------------------------

    def _generator(self, offset: int = 0) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + offset)

    def _write(self, trainer: Trainer, name: str, images: Tensor, nrow: int, tag: str) -> None:
        png, grid = grid_png(images, nrow)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.dirpath / name, png)
        log_image(trainer.loggers, tag, grid, trainer.global_step)

    @staticmethod
    def _training_images(trainer: Trainer, k: int, split: str = "train") -> tuple[Tensor, Tensor] | None:
        datamodule = trainer.datamodule
        if datamodule is None or not hasattr(datamodule, "dataset"):
            return None
        dataset = datamodule.dataset(split)
        idx = range(min(k, len(dataset)))
        images = torch.stack([dataset.load_uint8(i) for i in idx]).float().div(127.5).sub(1)
        return images, torch.as_tensor([int(dataset.labels[i]) for i in idx])

    def _grid_labels(self, model: Denoises) -> tuple[Tensor | None, int, int]:
        """Labels of the epoch grid (rows of one class), its size and images per row."""
        if model.num_classes == 0:
            nrow = max(1, round(self.n**0.5))
            return None, self.n, nrow
        per_class = max(1, self.n // model.num_classes)
        labels = torch.arange(model.num_classes).repeat_interleave(per_class)
        return labels, len(labels), per_class

    @staticmethod
    def _sample_labels(model: Denoises, labels: Tensor | None) -> Tensor | None:
        if model.num_classes == 0:
            return None
        return labels.clamp_min(0).to(model.device)

    def _ddim(self, model: Denoises) -> Sampler:
        return model.resolve_sampler("ddim", steps=min(self.grid_steps, model.schedule.timesteps), eta=0.0)

    # ----- hooks --------------------------------------------------------------------------------

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if not isinstance(pl_module, Denoises):
            raise GenlabError(
                "callbacks.diffusion_viz draws a diffusion model's figures, but this model is not one: "
                "remove it (callbacks.diffusion_viz=null)."
            )

    @torch.no_grad()
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        batch = self._training_images(trainer, self.n_forward)
        if batch is None:
            return
        x0 = batch[0].to(pl_module.device)
        schedule = pl_module.schedule
        times = frame_times(schedule.timesteps, self.frames)
        noise = torch.randn(x0.shape, generator=self._generator()).to(x0.device)
        columns = [schedule.q_sample(x0, torch.full((len(x0),), t, device=x0.device), noise) for t in times]
        images = torch.stack(columns, dim=1).flatten(0, 1)
        self._write(trainer, "forward.png", images, len(times), "diffusion/forward")
        log.info("forward.png: columns at t = %s", ", ".join(map(str, times)))

    @torch.no_grad()
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        epoch = trainer.current_epoch + 1
        last = is_last_epoch(trainer, epoch)
        if epoch % self.every_n_epochs and not last:
            return
        since = None if self._last_grid_step is None else trainer.global_step - self._last_grid_step
        if since is not None and since < self.min_steps_between and not last:
            return
        self._grid(trainer, pl_module, epoch)

    def _grid(self, trainer: Trainer, model: Denoises, epoch: int) -> None:
        labels, n, nrow = self._grid_labels(model)
        eps_fn = model.denoiser(self._sample_labels(model, labels))
        images = self._ddim(model).sample(eps_fn, model.schedule, (n, *model.image_shape), self._generator())
        self._write(trainer, f"epoch_{epoch:04d}.png", images, nrow, "samples/grid")
        self._last_grid_epoch, self._last_grid_step = epoch, trainer.global_step

    @torch.no_grad()
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if 0 < trainer.current_epoch != self._last_grid_epoch:  # stopped early (max_time, max_steps)
            self._grid(trainer, pl_module, trainer.current_epoch)
        self._reverse(trainer, pl_module)
        self._reconstruct(trainer, pl_module)
        if self.n_inpaint > 0:
            self._inpaint(trainer, pl_module)

    def _reverse(self, trainer: Trainer, model: Denoises) -> None:
        T = model.schedule.timesteps
        labels = torch.arange(self.n_reverse) % model.num_classes if model.num_classes > 0 else None
        sampler = model.resolve_sampler("ddpm") if self.reverse_sampler == "ddpm" else self._ddim(model)
        eps_fn = model.denoiser(self._sample_labels(model, labels))
        shape = (self.n_reverse, *model.image_shape)
        _, trajectory = sampler.sample(eps_fn, model.schedule, shape, self._generator(1), return_trajectory=True)
        by_time = dict(trajectory)
        wanted: list[int] = []
        for i in range(self.frames):
            target = T - i * T / max(1, self.frames - 1)
            nearest = min(by_time, key=lambda s, target=target: abs(s - target))
            if nearest not in wanted:
                wanted.append(nearest)
        columns = [by_time[t] for t in wanted]
        images = torch.stack(columns, dim=1).flatten(0, 1)
        self._write(trainer, "reverse.png", images, len(columns), "diffusion/reverse")
        log.info("reverse.png (%s): columns at t = %s", sampler.name, ", ".join(map(str, wanted)))

    def _reconstruct(self, trainer: Trainer, model: Denoises) -> None:
        batch = self._training_images(trainer, self.n_reconstruct)
        if batch is None:
            return
        x0 = batch[0].to(model.device)
        T = model.schedule.timesteps
        t = max(0, min(T - 1, round(self.reconstruct_t * T) - 1))
        generator = self._generator(2)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        x_t = model.schedule.q_sample(x0, torch.full((len(x0),), t, device=x0.device), noise)
        eps_fn = model.denoiser(self._sample_labels(model, batch[1]))
        sampler = model.resolve_sampler("ddpm")
        x_back = sampler.sample(eps_fn, model.schedule, tuple(x0.shape), generator, x_start=x_t, start_t=t)
        self._write(trainer, "reconstruct.png", torch.cat([x0, x_t, x_back]), len(x0), "diffusion/reconstruct")
        log.info("reconstruct.png: rows original | noised to t=%d | denoised back (ddpm)", t + 1)

    def _inpaint(self, trainer: Trainer, model: Denoises) -> None:
        try:
            batch = self._training_images(trainer, self.n_inpaint, "test")
        except GenlabError:  # a dataset without a test split
            batch = self._training_images(trainer, self.n_inpaint)
        if batch is None:
            return
        x0 = batch[0].to(model.device)
        mask = center(len(x0), model.image_shape[1], self.inpaint_mask_size)
        labels = self._sample_labels(model, batch[1])
        steps = min(self.grid_steps, model.schedule.timesteps)
        filled = inpaint(model, x0, mask, labels, self._generator(3), sampler="ddim", steps=steps, eta=0.0)
        masked = torch.where(mask.bool().to(x0.device), x0.new_tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1), x0)
        rows = torch.cat([x0.expand(-1, 3, -1, -1), masked, filled.expand(-1, 3, -1, -1)])
        self._write(trainer, "inpaint.png", rows, len(x0), "diffusion/inpaint")
        log.info("inpaint.png: rows test image | centre mask (red) | RePaint on DDIM-%d", steps)
