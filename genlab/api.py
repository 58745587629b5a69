"""The run API, genlab's public Python API: load a trained run and use it.

.. code-block:: python

    import genlab

    run = genlab.Run.load("outputs/train/2026-12-01_10-00-00_dcgan_digits")
    samples = run.sample(16, seed=0)              # Samples(images in [-1, 1], labels)
    scores = run.evaluate(n=1000)                 # FID, KID, precision/recall, class metrics

``genlab sample``, ``genlab eval`` and the synthetic-pool builder go through it; what a run can do
is decided by its model's capabilities (:mod:`genlab.capabilities`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from pytorch_lightning import LightningDataModule, LightningModule
from torch import Tensor

from genlab import progress
from genlab.build import (
    instantiate_datamodule,
    instantiate_model,
    load_export,
    load_run_config,
    load_weights,
    pick_device,
    resolve_checkpoint,
)
from genlab.capabilities import (
    Classifies,
    Denoises,
    Edits,
    Generates,
    Interpolates,
    Restores,
    Translates,
    Varies,
    capability_names,
    generates_conditionally,
)
from genlab.diffusion.inpainting import inpaint
from genlab.errors import GenlabError
from genlab.scoring.dispatch import score_model

TRANSLATE_BATCH = 64


@dataclass
class Samples:
    """Generated images (N, C, H, W) in [-1, 1] on the CPU, and their labels for conditional models."""

    images: Tensor
    labels: Tensor | None = None


@dataclass
class Evaluation:
    """Scores of a run and how they were made (``metrics``), and a grid of samples where there are any.

    ``nearest``: the memorisation check's images where it ran, 7 a row: a sample, its 3 nearest training
    images in the feature space, its 3 nearest in pixels (in [-1, 1]).
    """

    metrics: dict[str, Any]
    grid: Tensor | None = None
    nearest: Tensor | None = None


def _check_n(n: Any, minimum: int = 1, what: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < minimum:
        raise GenlabError(f"{what}={n} must be an integer ≥ {minimum}.")
    return n


class Run:
    """A trained run folder: its saved config, checkpoint and rebuilt model (weights only).

    Use :meth:`load`; the model is in eval mode on ``device``.
    """

    def __init__(
        self, directory: Path, config: DictConfig, checkpoint: Path, model: LightningModule, device: torch.device
    ) -> None:
        self.directory = directory
        self.config = config
        self.checkpoint = checkpoint
        self.model = model
        self.device = device

    @classmethod
    def load(cls, directory: str | Path, ckpt: str | None = "last", device: str | None = "auto") -> Run:
        """Rebuild the run in ``directory`` from its ``.hydra/config.yaml`` and ``ckpt`` (last | best | PATH)."""
        config = load_run_config(directory)
        checkpoint = resolve_checkpoint(directory, ckpt)
        target = pick_device(device)
        model = load_weights(instantiate_model(config), checkpoint).to(target).eval()
        return cls(Path(config.paths.run_dir), config, checkpoint, model, target)

    @classmethod
    def from_export(cls, directory: str | Path, device: str | None = "auto") -> Run:
        """Rebuild a model from a ``genlab export`` folder (:func:`genlab.build.load_export`); :meth:`sample`
        etc. then work as on the run."""
        config, model, weights = load_export(directory)
        target = pick_device(device)
        return cls(Path(directory), config, weights, model.to(target).eval(), target)

    def __repr__(self) -> str:
        return f"Run({str(self.directory)!r}, model={self.name}, checkpoint={self.checkpoint.name})"

    @property
    def name(self) -> str:
        """The model config's name (``dcgan``, ``ddpm``, ...)."""
        return str(self.config.model.name)

    @cached_property
    def datamodule(self) -> LightningDataModule:
        """The run's dataset (no training augmentation), loaded on first use."""
        return instantiate_datamodule(self.config, train=False)

    def capabilities(self) -> list[str]:
        """What the model can do: ``generate``, ``generate_conditionally``, ``interpolate``, ``translate``, ..."""
        return capability_names(self.model)

    def _require(self, capability: type, what: str, advice: str) -> Any:
        if not isinstance(self.model, capability):
            raise GenlabError(f"{what} is not available for model={self.name}: {advice}")
        return self.model

    # ----- generation -----------------------------------------------------------------------

    def generation_options(self) -> dict[str, str]:
        """The options :meth:`sample` accepts for this model, with a line on each (empty when it does not generate;
        a denoising autoencoder's restoration options)."""
        if isinstance(self.model, Restores):
            return dict(self.model.restoration_options())
        return dict(self.model.generation_options()) if isinstance(self.model, Generates) else {}

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Refuse options the model does not take, naming the ones it does."""
        accepted = self.generation_options()
        for key, value in options.items():
            if key not in accepted:
                names = ", ".join(sorted(accepted)) or "none"
                raise GenlabError(f"{key}={value} is not an option of model={self.name} (it takes: {names}).")
        return options

    def labels(self, label: int | Sequence[int] | None, n: int) -> Tensor | None:
        """Labels for ``n`` samples: ``label`` repeated, else every class in turn; None when unconditional."""
        if not generates_conditionally(self.model):
            if label is not None:
                raise GenlabError(
                    f"label={label} was given, but model={self.name} is unconditional (it was not trained with "
                    "labels): drop label=, or train a conditional model (e.g. model=cgan or model=cddpm)."
                )
            return None
        classes = self.model.num_classes
        wanted = list(range(classes)) if label is None else list(label) if isinstance(label, Sequence) else [label]
        for value in wanted:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < classes:
                raise GenlabError(f"label={value} is out of range: this model knows classes 0..{classes - 1}.")
        if label is None:
            return torch.arange(classes).repeat_interleave(-(-n // classes))[:n]
        return torch.tensor(wanted).repeat(-(-n // len(wanted)))[:n]

    @torch.no_grad()
    def sample(self, n: int = 64, seed: int = 0, label: int | Sequence[int] | None = None, **options: Any) -> Samples:
        """``n`` samples with the run's own prior or sampler (``options`` as :meth:`generation_options` lists)."""
        model = self._require(Generates, "sampling", "it does not generate images from noise.")
        n = _check_n(n)
        labels = self.labels(label, n)
        self.check_options(options)
        generator = torch.Generator(self.device).manual_seed(seed)
        batch = 256
        parts = []
        with progress.progress(n, f"sampling {n} images"):
            for start in range(0, n, batch):
                size = min(batch, n - start)
                chunk = None if labels is None else labels[start : start + size].to(self.device)
                with progress.part(size):
                    parts.append(model.generate(size, labels=chunk, generator=generator, **options).cpu())
        return Samples(torch.cat(parts), labels)

    @torch.no_grad()
    def interpolate(
        self, rows: int, steps: int = 8, seed: int = 0, label: int | Sequence[int] | None = None, **options: Any
    ) -> Samples:
        """``rows`` latent interpolations of ``steps`` images each (between two fresh latents per row)."""
        model = self._require(Interpolates, "interpolate=true", "it has no latent space (GANs have one).")
        _check_n(rows, 1, "rows")
        _check_n(steps, 2, "nrow")
        self.check_options(options)
        row_labels = self.labels(label, rows)
        generator = torch.Generator(self.device).manual_seed(seed)
        latent_options = {k: v for k, v in options.items() if k == "truncation"}
        ends = model.sample_latent(2 * rows, generator, **latent_options).view(rows, 2, -1)
        latents = torch.cat([model.interpolate_latents(start, end, steps) for start, end in ends])
        labels = None if row_labels is None else row_labels.repeat_interleave(steps)
        decode_options = {k: v for k, v in options.items() if k == "ema"}
        return Samples(model.decode(latents, labels, **decode_options).cpu(), labels)

    # ----- image-to-image ------------------------------------------------------------------

    @torch.no_grad()
    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """The model's translation of ``images`` (in [-1, 1]) in ``direction``, batch by batch, on the CPU."""
        model = self._require(Translates, "translation", "it does not translate images (pix2pix, CycleGAN do).")
        if direction not in model.directions:
            raise GenlabError(
                f"direction={direction} is not one of {', '.join(model.directions)} for model={self.name}."
            )
        return torch.cat([model.translate(chunk.to(self.device), direction).cpu() for chunk in images.split(64)])

    @torch.no_grad()
    def edit(
        self,
        images: Tensor,
        strength: float,
        labels: Tensor | None = None,
        seed: int = 0,
        **options: Any,
    ) -> Tensor:
        """SDEdit variations of ``images`` (in [-1, 1]) at ``strength``, guided by ``labels`` on conditional models."""
        model = self._require(Edits, "image-to-image editing", "it is not a diffusion model (ddpm, cddpm).")
        self.check_options(options)
        generator = torch.Generator(self.device).manual_seed(seed)
        with progress.progress(len(images), f"editing {len(images)} images"):
            return model.edit(images, strength, labels, generator, **options).cpu()

    def inpaint(
        self, images: Tensor, mask: Tensor, labels: Tensor | None = None, seed: int = 0, **options: Any
    ) -> Tensor:
        """RePaint: fill ``images`` (in [-1, 1]) where ``mask`` (N or 1, 1, H, W) is 1, keep the rest exactly; options:
        ``resample`` (r: 10 on a GPU, 3 on a CPU), ``jump`` (j: 10), ``sampler`` (ddpm | ddim) + its, ``guidance``."""
        model = self._require(Denoises, "inpainting", "it is not a diffusion model (ddpm, cddpm, ddpm_large).")
        with progress.progress(len(images), f"inpainting {len(images)} images"):
            return inpaint(model, images, mask, labels, torch.Generator(self.device).manual_seed(seed), **options).cpu()

    @torch.no_grad()
    def vary(self, images: Tensor, variations: int = 1, seed: int = 0) -> Tensor:
        """``variations`` new images per input (in [-1, 1]) of its class (DAGAN), shape (N, variations, C, H, W)."""
        model = self._require(Varies, "variations of given images", "it is not a DAGAN run (model=dagan).")
        _check_n(variations, 1, "variations")
        generator = torch.Generator(self.device).manual_seed(seed)
        repeated = images.repeat_interleave(variations, 0)
        varied = torch.cat([model.vary(chunk.to(self.device), generator).cpu() for chunk in repeated.split(256)])
        return varied.view(len(images), variations, *images.shape[1:])

    def split_images(self, split: str, n: int) -> tuple[Tensor, Tensor | None]:
        """The first ``n`` images of a split of the run's dataset (in [-1, 1]) and their labels (None if unlabelled)."""
        dataset = self.datamodule.dataset(split)
        count = min(_check_n(n), len(dataset))
        images = torch.stack([dataset.load_uint8(i) for i in range(count)]).float().div(127.5).sub(1)
        labels = torch.as_tensor([int(dataset.labels[i]) for i in range(count)])
        return images, labels if bool((labels >= 0).all()) else None

    def split_pairs(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        """The first ``n`` pairs (A, B) of a split of the run's paired dataset, in [-1, 1]."""
        fixed_pairs = getattr(self.datamodule, "fixed_pairs", None)
        if fixed_pairs is None:
            raise GenlabError(f"data={self.config.data.name} holds no image pairs.")
        return fixed_pairs(split, _check_n(n))

    # ----- scores ---------------------------------------------------------------------------

    def evaluate(
        self,
        n: int | None = None,
        features: str | None = None,
        split: str = "test",
        metrics: Sequence[str] | str | None = None,
        seed: int = 0,
        settings: DictConfig | None = None,
        cache_dir: str | Path | None = None,
        **options: Any,
    ) -> Evaluation:
        """Score the run: FID/KID/precision-recall/class metrics of ``n`` samples (generators), L1/PSNR/SSIM/FID
        of translations (translators), or accuracy (classifiers). ``settings`` is an ``eval`` settings node
        (default: the run's own), ``options`` are generation options (default: ``settings.sample_options``)."""
        settings = settings if settings is not None else self.config.eval
        size = len(self.datamodule.dataset(split))
        count = _check_n(n) if n is not None else min(size, int(settings.max_n))
        if not isinstance(self.model, Classifies):
            self.check_options(options)
        result, grid, nearest = score_model(
            self.model, self.name, self.datamodule, self.config.data, settings, n=count, features=features,
            split=split, metrics=metrics, seed=seed, device=self.device, options=options,
            cache_dir=cache_dir if cache_dir is not None else self.config.paths.cache_dir,
        )  # fmt: skip
        return Evaluation(result, grid, nearest)
