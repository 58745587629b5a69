"""The object an ``augment`` config builds: per-sample transforms plus batch transforms."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor
from torchvision.transforms import v2


class Augmentation:
    """Training-time augmentation.

    Args:
        name: the config option's name (``none``, ``basic``, ...).
        transforms: per-sample transforms on float images in [0, 1] (C, H, W), composed in order.
        batch_transforms: transforms on a whole batch ``(images, labels) -> (images, labels)``
            run after the batch reaches the device, e.g. ``v2.MixUp`` (labels become soft).
    """

    def __init__(
        self,
        name: str = "none",
        transforms: Sequence[Callable[[Tensor], Tensor]] = (),
        batch_transforms: Sequence[Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]] = (),
    ) -> None:
        self.name = name
        self.sample_transform = v2.Compose(list(transforms)) if transforms else None
        self.batch_transforms = list(batch_transforms)

    @property
    def mixes_labels(self) -> bool:
        """True when batch transforms turn labels into soft (mixed) labels."""
        return bool(self.batch_transforms)

    def apply_batch(self, images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Run the batch transforms on a training batch."""
        for transform in self.batch_transforms:
            images, labels = transform(images, labels)
        return images, labels

    def preview(self, image01: Tensor) -> Tensor:
        """One augmented version of a single float image in [0, 1]."""
        if self.sample_transform is None:
            return image01
        return self.sample_transform(image01).clamp(0, 1)
