"""DDPM (Ho et al. 2020) as a LightningModule: ε-prediction trained with L_simple, EMA weights for
sampling, and an optional class-conditional variant with classifier-free guidance (Ho & Salimans 2021).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, ListConfig
from torch import Tensor, nn
from torchvision.utils import save_image

from genlab.data.user_images import input_images, load_user_images
from genlab.diffusion.samplers import EpsFn, check_sampler_options, ddim_sample, ddpm_sample, gaussian_noise
from genlab.diffusion.schedules import NoiseSchedule
from genlab.errors import GenlabError, TrainingDivergedError
from genlab.metrics.features import to_uint8
from genlab.models.base import GenerativeModule, to_unit_range
from genlab.noise.priors import GaussianNoise, NoiseDist
from genlab.tasks.common import instantiate_datamodule, load_run_config

SAMPLERS = ("ddpm", "ddim")
DEFAULT_DDIM_STEPS = 50
DEFAULT_VARIATIONS = 4
DEFAULT_STRENGTH = 0.5

log = logging.getLogger("genlab")


def check_strength(strength: Any) -> float:
    """``strength`` as a float in [0, 1], or a GenlabError naming the option."""
    if isinstance(strength, bool) or not isinstance(strength, int | float) or not 0 <= strength <= 1:
        raise GenlabError(
            f"strength={strength} must be a number in [0, 1]: the share of the noise schedule an input is "
            "noised to before it is denoised back (0 = the input unchanged, 1 = a new sample from pure noise)."
        )
    return float(strength)


def strength_list(strength: Any) -> list[float]:
    """One strength or a list of them (``strength=[0.3,0.5,0.7]``), each checked."""
    values = list(strength) if isinstance(strength, list | tuple | ListConfig) else [strength]
    if not values:
        raise GenlabError("strength=[] is empty: give a number in [0, 1] or a list of them.")
    return [check_strength(value) for value in values]


class DiffusionModule(GenerativeModule):
    """Denoising diffusion model: learns ε_θ(x_t, t[, y]) by minimising ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖².

    Logs ``train/loss`` and ``val/loss`` (the EMA net on fixed t and noise). Samples with the EMA
    weights, which live in ``ema_net`` and are saved in checkpoints.

    Args:
        net: a partial noise-prediction net, called with ``num_classes`` (0 when unconditional).
        schedule: the noise schedule (the top-level ``schedule`` group).
        optimizer: a partial optimizer called with the net's parameters.
        channels, image_size: the generated images' shape.
        num_classes: the dataset's classes (used when ``conditional``).
        conditional: train with labels (dropped to the null class with ``label_dropout``).
        label_dropout: probability of replacing a label by the null class during training.
        noise_dist: the run's ``noise_dist``; only Gaussian noise is meaningful for diffusion.
        ema_decay: EMA decay of the sampling weights (with warm-up min(decay, (1+n)/(10+n))).
        sampler: default sampler, ``ddpm`` or ``ddim``.
        steps: default DDIM steps (ddpm always runs all T steps).
        eta: default DDIM η.
        variance: DDPM σ_t²: ``beta`` (β_t) or ``posterior`` (β̃_t).
        clip_x0: clip the predicted x_0 to [−1, 1] while sampling.
        guidance: default classifier-free guidance scale s of conditional models,
            ε = ε(∅) + s (ε(y) − ε(∅)); 1 = plain conditional, 0 = unconditional.
        sample_batch_size: images denoised at once by :meth:`generate`.
        scheduler: optional partial LR scheduler called with the optimizer.
    """

    sample_options: ClassVar[frozenset[str]] = frozenset(
        {"sampler", "steps", "eta", "guidance", "input", "split", "strength", "variations"}
    )
    sampler_keys: ClassVar[tuple[str, ...]] = ("sampler", "steps", "eta", "guidance")
    uses_image_grid: ClassVar[bool] = False

    def __init__(
        self,
        net: Callable[..., nn.Module],
        schedule: NoiseSchedule,
        optimizer: Callable[..., torch.optim.Optimizer],
        channels: int,
        image_size: int,
        num_classes: int = 0,
        conditional: bool = False,
        label_dropout: float = 0.1,
        noise_dist: NoiseDist | None = None,
        ema_decay: float = 0.999,
        sampler: str = "ddpm",
        steps: int | None = None,
        eta: float = 0.0,
        variance: str = "beta",
        clip_x0: bool = True,
        guidance: float | None = None,
        sample_batch_size: int = 256,
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__()
        if noise_dist is not None and not isinstance(noise_dist, GaussianNoise):
            name = getattr(noise_dist, "name", type(noise_dist).__name__)
            raise GenlabError(
                f"noise_dist={name} cannot be used with a diffusion model: its forward process "
                "q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) is Gaussian by definition. Use noise_dist=gaussian."
            )
        if conditional and num_classes < 1:
            raise GenlabError(
                "model.conditional=true needs a labelled dataset (data.num_classes > 0); "
                "train model=ddpm on unlabelled data."
            )
        if not 0 <= label_dropout < 1:
            raise GenlabError(f"model.label_dropout={label_dropout} must be in [0, 1).")
        if not 0 <= ema_decay < 1:
            raise GenlabError(f"model.ema_decay={ema_decay} must be in [0, 1).")
        self.num_classes = num_classes if conditional else 0
        self.net = net(num_classes=self.num_classes)
        self.ema_net = copy.deepcopy(self.net).requires_grad_(False)
        self.schedule = schedule
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.image_shape = (channels, image_size, image_size)
        self.label_dropout = label_dropout
        self.ema_decay = ema_decay
        self.variance = variance
        self.clip_x0 = clip_x0
        self.sample_batch_size = sample_batch_size
        self.defaults = {"sampler": sampler, "steps": steps, "eta": eta, "guidance": guidance}
        check_sampler_options(schedule.timesteps, steps, eta)  # refuse bad defaults at construction
        self.sampling_options()

    def train(self, mode: bool = True) -> DiffusionModule:
        """Switch the trained net's mode; the EMA net always stays in eval mode (no dropout when sampling)."""
        super().train(mode)
        self.ema_net.eval()
        return self

    # ----- training -----------------------------------------------------------------------------

    def diffusion_loss(self, net: nn.Module, x0: Tensor, labels: Tensor | None, generator=None) -> Tensor:
        """L_simple on a batch: t ~ U{0..T−1}, ε ~ N(0, I)."""
        t = torch.randint(0, self.schedule.timesteps, (x0.shape[0],), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
        return F.mse_loss(net(self.schedule.q_sample(x0, t, noise), t, labels), noise)

    def _train_labels(self, labels: Tensor) -> Tensor | None:
        if not self.conditional:
            return None
        if bool((labels < 0).any()):
            raise GenlabError("a conditional diffusion model needs labels, but this dataset has unlabelled images.")
        drop = torch.rand(labels.shape, device=labels.device) < self.label_dropout
        return torch.where(drop, torch.full_like(labels, self.num_classes), labels)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        loss = self.diffusion_loss(self.net, images, self._train_labels(labels))
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"training diverged: train/loss (the diffusion loss) became {loss.item()} at step {self.global_step} "
                f"(epoch {self.current_epoch}); the last good checkpoint is kept in checkpoints/. "
                "Try a lower learning rate (model.optimizer.lr)."
            )
        self.log_step({"train/loss": loss}, prog_bar=True, on_epoch=False)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        generator = torch.Generator(images.device).manual_seed(batch_idx)
        labels = labels if self.conditional else None
        self.log("val/loss", self.diffusion_loss(self.ema_net, images, labels, generator), prog_bar=True)

    @torch.no_grad()
    def update_ema(self) -> None:
        """ema ← d·ema + (1 − d)·θ with d = min(ema_decay, (1 + n)/(10 + n)) after n updates."""
        decay = min(self.ema_decay, (1 + self.global_step) / (10 + self.global_step))
        for ema, param in zip(self.ema_net.parameters(), self.net.parameters(), strict=True):
            ema.lerp_(param.detach(), 1 - decay)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.update_ema()

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.net.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer=optimizer)}

    # ----- sampling -----------------------------------------------------------------------------

    def sampling_options(
        self, sampler: str | None = None, steps: int | None = None, eta: float | None = None, guidance=None
    ) -> dict[str, Any]:
        """The sampler settings to use (given values over the model's defaults), validated."""
        T = self.schedule.timesteps
        chosen = sampler or self.defaults["sampler"]
        if chosen not in SAMPLERS:
            raise GenlabError(f"sampler={chosen} is not one of {', '.join(SAMPLERS)}.")
        check_sampler_options(T, steps, eta)
        if guidance is not None and not self.conditional:
            raise GenlabError(
                f"guidance={guidance} needs a conditional model, but this run is unconditional: drop guidance= "
                "or train model=cddpm (classifier-free guidance)."
            )
        if guidance is not None and not guidance >= 0:
            raise GenlabError(f"guidance={guidance} must be ≥ 0 (1 = plain conditional sampling, 0 = unconditional).")
        if chosen == "ddpm":
            if steps is not None and steps != T:
                raise GenlabError(
                    f"steps={steps} needs sampler=ddim: sampler=ddpm always runs all T={T} steps "
                    "(e.g. sampler=ddim steps=50)."
                )
            if eta is not None:
                raise GenlabError(f"eta={eta} only applies to sampler=ddim.")
            return {"sampler": "ddpm", "guidance": self._guidance(guidance)}
        default_steps = self.defaults["steps"] or min(DEFAULT_DDIM_STEPS, T)
        return {
            "sampler": "ddim",
            "steps": steps or default_steps,
            "eta": self.defaults["eta"] if eta is None else eta,
            "guidance": self._guidance(guidance),
        }

    def _guidance(self, guidance: float | None) -> float:
        if guidance is not None:
            return float(guidance)
        return float(self.defaults["guidance"]) if self.conditional and self.defaults["guidance"] is not None else 1.0

    def denoiser(self, labels: Tensor | None, guidance: float = 1.0, net: nn.Module | None = None) -> EpsFn:
        """ε(x_t, t) for ``labels`` (None → the null class), with classifier-free guidance scale ``guidance``."""
        net = self.ema_net if net is None else net
        if not self.conditional:
            return lambda x, t: net(x, t)
        if labels is None or guidance == 1.0:
            return lambda x, t: net(x, t, labels)
        null = torch.full_like(labels, self.num_classes)

        def guided(x: Tensor, t: Tensor) -> Tensor:
            eps_cond, eps_null = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null])).chunk(2)
            return eps_null + guidance * (eps_cond - eps_null)

        return guided

    def run_sampler(
        self,
        eps_fn: EpsFn,
        shape: tuple[int, ...],
        generator: torch.Generator | None,
        options: dict[str, Any],
        **kwargs: Any,
    ) -> Any:
        """Run the sampler named in ``options`` (from :meth:`sampling_options`); ``kwargs`` go to it."""
        if options["sampler"] == "ddpm":
            return ddpm_sample(
                eps_fn, self.schedule, shape, generator, variance=self.variance, clip_x0=self.clip_x0, **kwargs
            )
        return ddim_sample(
            eps_fn,
            self.schedule,
            shape,
            generator,
            steps=options["steps"],
            eta=options["eta"],
            clip_x0=self.clip_x0,
            **kwargs,
        )

    @torch.no_grad()
    def generate(
        self,
        n: int,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance: float | None = None,
    ) -> Tensor:
        """``n`` images in [-1, 1] from the EMA net, ``sample_batch_size`` at a time."""
        options = self.sampling_options(sampler, steps, eta, guidance)
        if labels is not None and not self.conditional:
            raise GenlabError("labels were given, but this diffusion model is unconditional.")
        return self._sample_in_chunks(n, labels, generator, options, lambda part: {})

    def _sample_in_chunks(
        self,
        n: int,
        labels: Tensor | None,
        generator: torch.Generator | None,
        options: dict[str, Any],
        start: Callable[[slice], dict[str, Any]],
    ) -> Tensor:
        """Run the sampler on ``sample_batch_size`` images at a time; ``start(part)`` gives the
        sampler's ``x_start``/``start_t`` for the images ``part`` (nothing: from pure noise)."""
        out = []
        for first in range(0, n, self.sample_batch_size):
            part = slice(first, min(n, first + self.sample_batch_size))
            chunk = None if labels is None else labels[part].to(self.device)
            eps_fn = self.denoiser(chunk, options["guidance"])
            shape = (part.stop - part.start, *self.image_shape)
            out.append(self.run_sampler(eps_fn, shape, generator, options, **start(part)))
        return torch.cat(out).clamp(-1, 1)

    # ----- image-to-image (SDEdit) --------------------------------------------------------------

    @torch.no_grad()
    def sdedit(
        self,
        images: Tensor,
        strength: float,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance: float | None = None,
    ) -> Tensor:
        """SDEdit (Meng et al. 2022): noise ``images`` (in [-1, 1]) to t0 = strength·T with q(x_t0 | x_0),
        then denoise back to 0 with the chosen sampler, guided by ``labels`` on a conditional model.

        Strength 0 returns the images; strength 1 starts from pure noise (a new sample). DDIM
        ``steps`` count over the whole schedule and are scaled to the span t0 (at least one).
        """
        strength = check_strength(strength)
        options = self.sampling_options(sampler, steps, eta, guidance)
        if labels is not None and not self.conditional:
            raise GenlabError("labels were given, but this diffusion model is unconditional.")
        if tuple(images.shape[1:]) != self.image_shape:
            raise GenlabError(
                f"SDEdit inputs have shape {tuple(images.shape[1:])}, but this model makes images of shape "
                f"{self.image_shape} (channels, height, width)."
            )
        images = images.to(self.device)
        if strength == 0:
            return images.clone()
        T = self.schedule.timesteps
        t0 = max(1, round(strength * T))
        if options["sampler"] == "ddim":
            options = {**options, "steps": max(1, round(options["steps"] * t0 / T))}

        def noised(part: slice) -> dict[str, Any]:
            x0 = images[part]
            x_t = gaussian_noise(x0.shape, generator, self.device)
            if strength < 1:
                x_t = self.schedule.q_sample(x0, torch.full((len(x0),), t0 - 1, device=self.device), x_t)
            return {"x_start": x_t, "start_t": t0 - 1}

        return self._sample_in_chunks(len(images), labels, generator, options, noised)

    @torch.no_grad()
    def sample_to(self, cfg: DictConfig, out_dir: Path) -> list[Path]:
        """``genlab sample``: samples from noise, or with ``input=``/``split=``/``strength=`` SDEdit variations."""
        if cfg.get("input") or cfg.get("split") or cfg.get("strength") is not None:
            return self._sdedit_to(cfg, out_dir)
        if cfg.get("variations") is not None:
            raise GenlabError(
                f"variations={cfg.variations} applies to image-to-image sampling: add input=PATH or split=train."
            )
        return super().sample_to(cfg, out_dir)

    def _sdedit_inputs(self, cfg: DictConfig) -> tuple[Tensor, Tensor | None, list[str]]:
        """The images to vary (in [-1, 1]), their labels (split mode) and a name for each."""
        if cfg.get("input") and cfg.get("split"):
            raise GenlabError(f"input={cfg.input} and split={cfg.split} were both given: choose one.")
        if cfg.n < 1:
            raise GenlabError(f"n={cfg.n} must be at least 1.")
        channels, size = self.image_shape[0], self.image_shape[1]
        if cfg.get("input"):
            files = input_images(str(cfg.input))[: cfg.n]
            log.info(
                "input images are converted to %d channel(s) and resized to %d×%d, the size this model was trained at",
                channels,
                size,
                size,
            )
            return load_user_images(files, channels, size), None, [path.stem for path in files]
        datamodule = instantiate_datamodule(load_run_config(cfg.run), train=False)
        dataset = datamodule.dataset(cfg.get("split") or "train")
        count = min(cfg.n, len(dataset))
        images, labels = dataset[list(range(count))] if hasattr(dataset, "images") else _stack(dataset, count)
        labels = labels if bool((labels >= 0).all()) else None
        return images, labels, [f"{i:05d}" for i in range(count)]

    def _sdedit_to(self, cfg: DictConfig, out_dir: Path) -> list[Path]:
        self.check_sample_options(cfg)
        strengths = strength_list(DEFAULT_STRENGTH if cfg.get("strength") is None else cfg.strength)
        variations = DEFAULT_VARIATIONS if cfg.get("variations") is None else cfg.variations
        if isinstance(variations, bool) or not isinstance(variations, int) or variations < 1:
            raise GenlabError(f"variations={variations} must be an integer ≥ 1 (variations per input image).")
        if cfg.format not in ("grid", "png", "npz"):
            raise GenlabError(f"format={cfg.format} is not one of grid, png, npz.")
        images, labels, names = self._sdedit_inputs(cfg)
        if cfg.get("label") is not None:
            labels = self.parse_labels(cfg.label, len(images))
        elif labels is not None and not self.conditional:
            labels = None
        options = {key: cfg.get(key) for key in self.sampler_keys if cfg.get(key) is not None}
        generator = torch.Generator(self.device).manual_seed(cfg.seed)
        log.info("SDEdit: %d inputs × %d variations at strength %s", len(images), variations, strengths)
        repeated = images.repeat_interleave(variations, 0)
        cond = None if labels is None else labels.repeat_interleave(variations, 0)
        columns = [images.unsqueeze(1)]
        for strength in strengths:
            varied = self.sdedit(repeated, strength, cond, generator, **options).cpu()
            columns.append(varied.view(len(images), variations, *self.image_shape))
        table = torch.cat(columns, 1)
        out_dir.mkdir(parents=True, exist_ok=True)
        grid_path = out_dir / "grid.png"
        save_image(to_unit_range(table.flatten(0, 1)), grid_path, nrow=table.shape[1], padding=2)
        written = [grid_path]
        if cfg.format == "png":
            folder = out_dir / "images"
            folder.mkdir(exist_ok=True)
            for row, name in zip(table, names, strict=True):
                for s, strength in enumerate(strengths):
                    for v in range(variations):
                        image = row[1 + s * variations + v]
                        save_image(to_unit_range(image), folder / f"{name}_s{strength:g}_v{v}.png")
            written.append(folder)
        elif cfg.format == "npz":
            path = out_dir / "samples.npz"
            arrays = {
                "inputs": to_uint8(images).numpy(),
                "images": to_uint8(
                    table[:, 1:].reshape(len(images), len(strengths), variations, *self.image_shape)
                ).numpy(),
                "strengths": np.asarray(strengths),
            }
            if labels is not None:
                arrays["labels"] = labels.numpy()
            np.savez_compressed(path, **arrays)
            written.append(path)
        return written


def _stack(dataset: Sequence[tuple[Tensor, Tensor]], count: int) -> tuple[Tensor, Tensor]:
    items = [dataset[i] for i in range(count)]
    return torch.stack([image for image, _ in items]), torch.stack([torch.as_tensor(label) for _, label in items])
