"""What every image-generating LightningModule offers to ``genlab sample`` and ``genlab eval``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig
from torch import Tensor
from torchvision.utils import save_image

from genlab.errors import GenlabError
from genlab.models.step_logging import StepLogging

GENERIC_SAMPLE_OPTIONS = frozenset({"n", "seed", "format", "nrow", "label"})
MODEL_SAMPLE_OPTIONS = (
    "truncation",
    "interpolate",
    "sampler",
    "steps",
    "eta",
    "guidance",
    "input",
    "split",
    "strength",
    "variations",
)


def to_unit_range(images: Tensor) -> Tensor:
    """[-1, 1] → [0, 1], clamped."""
    return images.add(1).div(2).clamp(0, 1)


class GenerativeModule(StepLogging):
    """Base class of models that generate images in [-1, 1].

    Subclasses implement :meth:`generate`; conditional models set ``num_classes`` > 0.
    ``sample_options`` lists the model-specific ``genlab sample`` options they accept (for
    example ``truncation`` or ``sampler``); any other one given on the command line is refused.
    """

    num_classes: int = 0
    sample_options: ClassVar[frozenset[str]] = frozenset()
    # False for models that write their own per-epoch grids (diffusion: cheap DDIM grids and
    # process figures; pix2pix: input | output | target triples) instead of the generic ImageGrid.
    uses_image_grid: ClassVar[bool] = True

    @property
    def conditional(self) -> bool:
        """True when the model generates images of a requested class."""
        return self.num_classes > 0

    def generate(
        self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None, **options
    ) -> Tensor:
        """``n`` images (N, C, H, W) in [-1, 1]; ``labels`` (N,) for conditional models."""
        raise NotImplementedError

    def check_sample_options(self, cfg: DictConfig) -> None:
        """Refuse options this model does not understand, naming them."""
        for key in MODEL_SAMPLE_OPTIONS:
            value = cfg.get(key)
            if value not in (None, False) and key not in self.sample_options:
                raise GenlabError(
                    f"{key}={value} is not an option of `genlab sample` for {type(self).__name__}; "
                    f"it accepts {', '.join(sorted(GENERIC_SAMPLE_OPTIONS | self.sample_options))}."
                )

    def parse_labels(self, label: int | list[int] | None, n: int) -> Tensor | None:
        """Labels for ``n`` samples: the requested ones repeated, or every class in turn."""
        if label is not None and not self.conditional:
            raise GenlabError(
                f"label={label} was given, but {type(self).__name__} is unconditional (it was not "
                "trained with labels): drop label=, or train a conditional model (e.g. model=cgan)."
            )
        if not self.conditional:
            return None
        if label is None:
            wanted = list(range(self.num_classes))
        else:
            wanted = list(label) if isinstance(label, list | tuple | ListConfig) else [label]
        for value in wanted:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < self.num_classes:
                raise GenlabError(f"label={value} is out of range: this model knows classes 0..{self.num_classes - 1}.")
        if label is None:
            per_class = -(-n // self.num_classes)
            return torch.arange(self.num_classes).repeat_interleave(per_class)[:n]
        return torch.tensor(wanted).repeat(-(-n // len(wanted)))[:n]

    @torch.no_grad()
    def sample_to(self, cfg: DictConfig, out_dir: Path) -> list[Path]:
        """``genlab sample``: generate ``cfg.n`` images and write them as ``cfg.format``."""
        self.check_sample_options(cfg)
        if cfg.n < 1:
            raise GenlabError(f"n={cfg.n} must be at least 1.")
        if cfg.format not in ("grid", "png", "npz"):
            raise GenlabError(f"format={cfg.format} is not one of grid, png, npz.")
        labels = self.parse_labels(cfg.label, cfg.n)
        generator = torch.Generator(self.device).manual_seed(cfg.seed)
        options = {key: cfg.get(key) for key in self.sample_options if cfg.get(key) is not None}
        images = self.generate(
            cfg.n, labels=None if labels is None else labels.to(self.device), generator=generator, **options
        )
        return write_samples(to_unit_range(images).cpu(), labels, out_dir, cfg.format, cfg.nrow, self.num_classes)


def default_nrow(n: int, labels: Tensor | None, num_classes: int) -> int:
    """Images per grid row: one row per class when labels cycle through classes, else √n."""
    if labels is not None and num_classes and n % num_classes == 0 and len(labels.unique()) == num_classes:
        return n // num_classes
    return max(1, round(n**0.5))


def write_samples(
    images01: Tensor, labels: Tensor | None, out_dir: Path, fmt: str, nrow: int | None, num_classes: int = 0
) -> list[Path]:
    """Write a batch in [0, 1] as ``grid.png``, or also one PNG each / ``samples.npz``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    grid_path = out_dir / "grid.png"
    save_image(images01, grid_path, nrow=nrow or default_nrow(len(images01), labels, num_classes), padding=2)
    written = [grid_path]
    if fmt == "png":
        folder = out_dir / "images"
        folder.mkdir(exist_ok=True)
        for i, image in enumerate(images01):
            suffix = "" if labels is None else f"_label{int(labels[i])}"
            save_image(image, folder / f"{i:05d}{suffix}.png")
        written.append(folder)
    elif fmt == "npz":
        path = out_dir / "samples.npz"
        arrays = {"images": (images01 * 255).round().to(torch.uint8).numpy()}
        if labels is not None:
            arrays["labels"] = labels.numpy()
        np.savez_compressed(path, **arrays)
        written.append(path)
    return written
