"""scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes), resized: works offline."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from genlab.data.base import ImageDataModule
from genlab.data.datasets import TensorSplit, resize_uint8, split_indices


class DigitsDataModule(ImageDataModule):
    """The default dataset: sklearn's digits, split train/val/test with a fixed seed.

    Args:
        val_fraction, test_fraction: shares of the 1,797 images held out for validation and test.
    """

    def __init__(self, val_fraction: float = 0.1, test_fraction: float = 0.2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def load_splits(self) -> dict[str, TensorSplit]:
        digits = load_digits()
        # Pixel values are 0..16; scale to 0..255.
        images = torch.from_numpy(digits.images).float().mul_(255 / 16).round_().to(torch.uint8)
        images = resize_uint8(images.unsqueeze(1), self.image_size)
        labels = torch.from_numpy(digits.target).long()
        parts = split_indices(len(labels), self.val_fraction, self.test_fraction, self.split_seed)
        return {split: TensorSplit(images[idx], labels[idx]) for split, idx in parts.items()}
