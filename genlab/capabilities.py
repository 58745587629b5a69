"""What a trained model can do, as ``typing.Protocol``s checked with ``isinstance``.

The run API and the commands ask a model for a capability instead of its class or its attributes
(no ``hasattr``): a model *generates* images from noise (conditionally or not), *translates*
images between two domains (trained on paired or unpaired data), *edits* images (SDEdit),
*interpolates* in a latent space, *denoises* (a diffusion model's ε-predictor and schedule),
*restores* noisy images (a denoising autoencoder), *encodes* images into its latent space (a VAE), or
*classifies*. A model may have several.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn


@runtime_checkable
class Generates(Protocol):
    """Makes images in [-1, 1] from noise.

    ``generation_options()`` maps every option ``generate`` accepts (besides n, labels and the
    generator) to a one-line description; it is the only place a model's sampling options are listed.
    """

    num_classes: int
    image_shape: tuple[int, int, int]

    def generate(
        self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None, **options: Any
    ) -> Tensor: ...

    def generation_options(self) -> Mapping[str, str]: ...


@runtime_checkable
class GeneratesConditionally(Generates, Protocol):
    """A generator whose ``num_classes`` > 0: ``generate`` makes images of the requested labels.

    Structurally a :class:`Generates`; :func:`generates_conditionally` adds the class-count check.
    """


def generates_conditionally(model: object) -> bool:
    """True for a generator that takes labels (the one place this is decided)."""
    return isinstance(model, GeneratesConditionally) and model.num_classes > 0


@runtime_checkable
class Interpolates(Protocol):
    """A generator with a latent space: draw latents, interpolate between them, decode them."""

    latent_dim: int

    def sample_latent(self, n: int, generator: torch.Generator | None = None, **options: Any) -> Tensor: ...

    def interpolate_latents(self, start: Tensor, end: Tensor, steps: int) -> Tensor: ...

    def decode(self, latents: Tensor, labels: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Translates(Protocol):
    """Maps images of one domain to another (pix2pix, CycleGAN).

    ``paired`` says whether it was trained on paired data; ``directions`` lists what
    ``translate`` accepts (``AtoB``, and ``BtoA`` for two-way translators); ``input_channels``
    maps a direction to the channels its inputs must have.
    """

    paired: bool
    directions: tuple[str, ...]
    image_size: int

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor: ...

    def input_channels(self, direction: str = "AtoB") -> int: ...


@runtime_checkable
class Edits(Protocol):
    """Varies given images by a ``strength`` in [0, 1] (SDEdit), optionally guided by labels."""

    num_classes: int
    image_shape: tuple[int, int, int]

    def edit(
        self,
        images: Tensor,
        strength: float,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor: ...


@runtime_checkable
class Denoises(Protocol):
    """A diffusion model: its schedule, ε-predictor for given labels, and sampler objects."""

    num_classes: int
    image_shape: tuple[int, int, int]
    schedule: Any

    def denoiser(self, labels: Tensor | None, guidance: float | None = None) -> Callable[[Tensor, Tensor], Tensor]: ...

    def resolve_sampler(self, sampler: Any = None, **options: Any) -> Any: ...

    def nfe(self, sampler: Any, labels: Tensor | None = None, guidance: float | None = None) -> int: ...


@runtime_checkable
class Classifies(Protocol):
    """An image classifier: logits (N, num_classes) for images in [-1, 1]; trains on soft labels too."""

    num_classes: int

    def classify(self, images: Tensor) -> Tensor: ...


@runtime_checkable
class Exports(Protocol):
    """Its samples come from one network (the EMA copy where there is one): ``genlab export`` saves that
    network's weights alone, and :meth:`genlab.api.Run.from_export` loads them back."""

    def sampling_network(self) -> nn.Module: ...


@runtime_checkable
class Restores(Protocol):
    """Removes noise from given images (a denoising autoencoder; not :class:`Denoises`, a diffusion ε-predictor).

    ``corrupt`` makes the noisy inputs the model was trained on at a ``noise_factor`` (the model
    documents its unit); ``restore`` returns its estimate of the clean images; ``noise_factors`` are
    the levels shown and scored by default; ``restoration_options()`` maps the options of
    ``genlab sample``/``eval`` to a line each, as ``generation_options()`` does for generators.
    """

    image_shape: tuple[int, int, int]
    noise_factors: tuple[float, ...]

    def corrupt(
        self, images: Tensor, noise_factor: float | Tensor, generator: torch.Generator | None = None
    ) -> Tensor: ...

    def restore(self, images: Tensor) -> Tensor: ...

    def restoration_options(self) -> Mapping[str, str]: ...


@runtime_checkable
class Encodes(Interpolates, Protocol):
    """A generator with an encoder (a VAE): ``encode`` maps images (and labels, when conditional) to latents
    that ``decode`` maps back, so one can interpolate between given images."""

    num_classes: int

    def encode(self, images: Tensor, labels: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Varies(Protocol):
    """Makes new images like given ones, of their class without being told it (DAGAN)."""

    image_shape: tuple[int, int, int]

    def vary(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor: ...


@runtime_checkable
class LearnedClasses(Protocol):
    """A conditional model extended by class inversion: ``class_ids[label]`` is the dataset class of each label,
    ``learned_classes`` the ones learned from a few images; ``label_of`` maps dataset classes to labels."""

    class_ids: tuple[int, ...]
    learned_classes: tuple[int, ...]

    def label_of(self, class_ids: Tensor) -> Tensor: ...


def capability_names(model: object) -> list[str]:
    """What ``model`` can do, by name: ``generate``, ``generate_conditionally``, ``interpolate``, ``translate``, ..."""
    checks = {
        "generate": isinstance(model, Generates),
        "generate_conditionally": generates_conditionally(model),
        "interpolate": isinstance(model, Interpolates),
        "translate": isinstance(model, Translates),
        "edit": isinstance(model, Edits),
        "inpaint": isinstance(model, Denoises),
        "vary": isinstance(model, Varies),
        "classify": isinstance(model, Classifies),
        "restore": isinstance(model, Restores),
        "encode": isinstance(model, Encodes),
    }
    return [name for name, present in checks.items() if present]
