"""Generative data augmentation: pools of labelled images made by a trained generator.

Two kinds, each also carrying the classical per-sample transforms of :class:`Augmentation`:

- :class:`GenerativeAugmentation` (``augment=generative``): class-conditional samples drawn from
  scratch from a cgan or conditional DDPM run (DAGAN-style);
- :class:`SDEditAugmentation` (``augment=sdedit``): SDEdit variations of the classifier's own real
  training images at several strengths from a DDPM run (Real Guidance / DA-Fusion style).

These objects say what the pool is and make it from a loaded model; building, caching and mixing it
into the classifier's batches is the ``train`` command's work (:mod:`genlab.tasks.synthetic`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from genlab import progress
from genlab.augment.pipeline import Augmentation
from genlab.capabilities import Denoises, Edits, Generates, generates_conditionally
from genlab.data.datasets import TensorSplit
from genlab.diffusion.sdedit import strength_list
from genlab.errors import GenlabError
from genlab.imaging import to_uint8, uint8_to_model_range

# Sampler of diffusion sources unless augment.sample_options names one: DDIM is ~40× faster than
# DDPM-1000 at 25 steps, with recognisable digits.
DIFFUSION_DEFAULTS = {"sampler": "ddim", "steps": 25}


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GenlabError(f"augment.{name}={value} must be an integer ≥ 1.")
    return value


class SyntheticAugmentation(Augmentation):
    """Classical transforms plus a pool of labelled synthetic images mixed into every training batch.

    Args:
        name, transforms, batch_transforms, on_device: as :class:`Augmentation` (the classical part).
        source: folder of the generator's train run, or ``auto`` to train ``generator`` first on
            the classifier's own real training images (same ``data`` config, val/test unused).
        ratio: share of each training batch drawn from the synthetic pool, in [0, 1).
        generator: ``source=auto`` settings: ``model`` (a model config name), ``seed`` and
            ``overrides`` (extra train overrides, e.g. ``trainer.max_steps=800``).
        sample_options: options passed to the source model (``sampler``, ``steps``, ``guidance`` for
            diffusion, ``truncation`` for GANs); ones the source does not take are refused.
        seed: seed of the pool's generation (the pool is the same for every classifier seed).
        batch_size: images generated at once.
        device: where to generate: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    """

    kind: ClassVar[str] = "synthetic"

    def __init__(
        self,
        name: str,
        source: str = "auto",
        ratio: float = 0.5,
        generator: Mapping[str, Any] | None = None,
        sample_options: Mapping[str, Any] | None = None,
        seed: int = 0,
        batch_size: int = 256,
        device: str = "auto",
        transforms: Sequence[Any] = (),
        batch_transforms: Sequence[Any] = (),
        on_device: bool = False,
    ) -> None:
        super().__init__(name=name, transforms=transforms, batch_transforms=batch_transforms, on_device=on_device)
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio < 1:
            raise GenlabError(
                f"augment.ratio={ratio} must be in [0, 1): the share of each training batch that is synthetic "
                "(0.5 = half real, half generated); 1 would train on generated images only."
            )
        self.source = str(source)
        self.ratio = float(ratio)
        self.generator = dict(generator or {})
        self.sample_options = {k: v for k, v in dict(sample_options or {}).items() if v is not None}
        self.seed = int(seed)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.device = device

    def check_source(self, model: Any, model_name: str, source: Path) -> None:
        """Refuse a source model that cannot make this kind of pool (the message names augment.source)."""
        accepted = model.generation_options() if isinstance(model, Generates) else {}
        unknown = sorted(set(self.sample_options) - set(accepted))
        if unknown:
            raise GenlabError(
                f"augment.sample_options.{unknown[0]} does not apply to the source model {model_name}: it takes "
                f"{', '.join(sorted(accepted)) or 'no sampling options'}."
            )

    def needs_source_classes(self) -> bool:
        """True when the pool's labels or guidance need the generator to know the classifier's classes
        (refused in a held-out-class study, whose generators never saw them)."""
        return True

    def options(self) -> dict[str, Any]:
        """Everything besides the source checkpoint that decides the pool's content."""
        return {"sample_options": self.sample_options, "diffusion_defaults": DIFFUSION_DEFAULTS}

    def source_options(self, model: Any) -> dict[str, Any]:
        """The options the source samples with: DDIM-25 for a diffusion source unless a sampler is named."""
        if isinstance(model, Denoises) and "sampler" not in self.sample_options:
            return {**DIFFUSION_DEFAULTS, **self.sample_options}
        return dict(self.sample_options)

    def size(self, real: TensorSplit, num_classes: int) -> int:
        """Images the pool will hold (for the progress bar)."""
        raise NotImplementedError

    def synthesize(self, model: Any, real: TensorSplit, generator: torch.Generator) -> TensorSplit:
        """Generate the pool (uint8 images, labels) with the loaded source ``model``."""
        raise NotImplementedError

    def _chunks(self, total: int) -> list[tuple[int, int]]:
        return [(start, min(total, start + self.batch_size)) for start in range(0, total, self.batch_size)]


class GenerativeAugmentation(SyntheticAugmentation):
    """``augment=generative``: ``n_per_class`` class-conditional samples per class from scratch."""

    kind: ClassVar[str] = "generative"

    def __init__(self, name: str = "generative", n_per_class: int = 200, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.n_per_class = _positive_int("n_per_class", n_per_class)

    def check_source(self, model: Any, model_name: str, source: Path) -> None:
        if not generates_conditionally(model):
            raise GenlabError(
                f"augment.source={source} is a {model_name} run, which cannot make labelled images: "
                "augment=generative needs a class-conditional generator (model=cgan or model=cddpm), because "
                "each synthetic image must carry the label it was generated for."
            )
        super().check_source(model, model_name, source)

    def options(self) -> dict[str, Any]:
        return {"n_per_class": self.n_per_class, **super().options()}

    def size(self, real: TensorSplit, num_classes: int) -> int:
        return num_classes * self.n_per_class

    def synthesize(self, model: Any, real: TensorSplit, generator: torch.Generator) -> TensorSplit:
        labels = torch.arange(model.num_classes).repeat_interleave(self.n_per_class)
        options = self.source_options(model)
        images = []
        for start, stop in self._chunks(len(labels)):
            batch = labels[start:stop].to(model.device)
            with progress.part(len(batch)):
                generated = model.generate(len(batch), labels=batch, generator=generator, **options)
            images.append(to_uint8(generated).cpu())
        return TensorSplit(torch.cat(images), labels)


class SDEditAugmentation(SyntheticAugmentation):
    """``augment=sdedit``: SDEdit variations of the real training images at several strengths.

    Each real image gets ``variations_per_image`` variations at every strength of ``strengths``;
    each variation carries its source image's label (and, on a conditional DDPM with ``guide``, is guided
    by it; ``guide=false`` uses the null class: Real Guidance without a class name).
    """

    kind: ClassVar[str] = "sdedit"

    def __init__(
        self,
        name: str = "sdedit",
        strengths: Sequence[float] = (0.3, 0.5, 0.7),
        variations_per_image: int = 1,
        guide: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        try:
            self.strengths = strength_list(strengths)
        except GenlabError as err:
            raise GenlabError(f"augment.strengths: {err}") from None
        self.variations_per_image = _positive_int("variations_per_image", variations_per_image)
        if not isinstance(guide, bool):
            raise GenlabError(f"augment.guide={guide} must be true or false.")
        self.guide = guide

    def check_source(self, model: Any, model_name: str, source: Path) -> None:
        if not isinstance(model, Edits):
            raise GenlabError(
                f"augment.source={source} is a {model_name} run: augment=sdedit needs a diffusion run "
                "(model=ddpm or model=cddpm), whose denoiser turns noised real images back into images."
            )
        super().check_source(model, model_name, source)

    def needs_source_classes(self) -> bool:
        return self.guide

    def guide_labels(self, model: Any, labels: Tensor) -> Tensor | None:
        """The labels guiding the variations of images of ``labels`` (None: the null class / unconditional)."""
        return labels if self.guide and model.num_classes > 0 else None

    def options(self) -> dict[str, Any]:
        options = {"strengths": self.strengths, "variations_per_image": self.variations_per_image}
        if not self.guide:
            options["guide"] = False
        return {**options, **super().options()}

    def size(self, real: TensorSplit, num_classes: int) -> int:
        return len(real.labels) * self.variations_per_image * len(self.strengths)

    def synthesize(self, model: Any, real: TensorSplit, generator: torch.Generator) -> TensorSplit:
        images = real.images.repeat_interleave(self.variations_per_image, 0)
        labels = real.labels.repeat_interleave(self.variations_per_image, 0)
        guide = self.guide_labels(model, labels)
        options = self.source_options(model)
        pools = []
        for strength in self.strengths:
            for start, stop in self._chunks(len(images)):
                x0 = uint8_to_model_range(images[start:stop])
                cond = None if guide is None else guide[start:stop].to(model.device)
                with progress.part(stop - start):
                    varied = model.edit(x0, strength, cond, generator, **options)
                pools.append(to_uint8(varied).cpu())
        return TensorSplit(torch.cat(pools), labels.repeat(len(self.strengths)))
