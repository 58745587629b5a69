"""The object an ``augment`` config builds: per-sample transforms plus batch transforms."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor
from torchvision.transforms import v2

from genlab.augment.batched import batch_transform
from genlab.augment.ranges import check_ranges
from genlab.errors import GenlabError


class Augmentation:
    """Training-time augmentation.

    Args:
        name: the config option's name (``none``, ``basic``, ...).
        transforms: per-sample transforms on float images in [0, 1] (C, H, W), composed in order.
        batch_transforms: transforms on a whole batch ``(images, labels) -> (images, labels)``
            run after the batch reaches the device, e.g. ``v2.MixUp`` (labels become soft).
        on_device: run ``transforms`` per batch on the training device (random parameters still drawn
            per image, see :mod:`genlab.augment.batched`) instead of per sample in the dataset.
    """

    def __init__(
        self,
        name: str = "none",
        transforms: Sequence[Callable[[Tensor], Tensor]] = (),
        batch_transforms: Sequence[Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]] = (),
        on_device: bool = False,
    ) -> None:
        if not isinstance(on_device, bool):
            raise GenlabError(f"augment.on_device={on_device} must be true or false.")
        check_ranges(transforms)
        self.name = name
        self.on_device = on_device
        self.per_sample = v2.Compose(list(transforms)) if transforms else None
        self._mixes_labels = bool(batch_transforms)
        self.batch_transforms = list(batch_transforms)
        if on_device and self.per_sample is not None:
            # the dataset delivers unaugmented batches; the first batch transform augments them on the device
            self.batch_transforms.insert(0, OnDeviceAugment(batch_transform(self.per_sample)))

    @property
    def sample_transform(self) -> Callable[[Tensor], Tensor] | None:
        """The per-sample transform the dataset runs (None when ``on_device`` moves it to the batch)."""
        return None if self.on_device else self.per_sample

    @property
    def mixes_labels(self) -> bool:
        """True when batch transforms turn labels into soft (mixed) labels."""
        return self._mixes_labels

    def apply_batch(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Run the batch transforms on a training batch (images in [-1, 1], on the training device)."""
        for transform in self.batch_transforms:
            images, labels = transform(images, labels)
        return images, labels

    def preview(self, image01: Tensor) -> Tensor:
        """One augmented version of a single float image in [0, 1]."""
        if self.per_sample is None:
            return image01
        return self.per_sample(image01).clamp(0, 1)


class OnDeviceAugment:
    """A batch transform ``(images, labels) -> (images, labels)`` running a batched per-image
    augmentation (:mod:`genlab.augment.batched`) on images in [-1, 1]."""

    def __init__(self, fn: Callable[[Tensor], Tensor]) -> None:
        self.fn = fn

    def __call__(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        return self.fn(images.add(1).div_(2)).clamp_(0, 1).mul_(2).sub_(1), labels
