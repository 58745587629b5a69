"""Datasets of images in [-1, 1]: in-memory uint8 splits batched by slicing, and files read one by one.

Small datasets are held in memory as uint8 tensors (N, C, H, W) and batched by indexing with a
whole batch of indices at once (no per-sample PIL round-trips). Large folders (CelebA, image
folders) are read lazily, one file per sample. Both deliver float images in [-1, 1] and int64
labels (-1 where a dataset has none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from genlab.errors import GenlabError
from genlab.imaging import to_model_range

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def resize_uint8(images: Tensor, size: int) -> Tensor:
    """Resize a uint8 batch (N, C, H, W) to size×size with antialiased bilinear interpolation."""
    if images.shape[-2:] == (size, size):
        return images.contiguous()
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, Tensor]:
    """A fixed random train/val/test partition of ``range(n)``."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = round(n * test_fraction)
    n_val = round(n * val_fraction)
    return {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image_uint8(path: Path, mode: str) -> Tensor:
    """An image file as uint8 (C, H, W) in PIL ``mode`` (``L`` or ``RGB``); a clear error if unreadable."""
    try:
        with Image.open(path) as pil:
            return TF.pil_to_tensor(pil.convert(mode))
    except (UnidentifiedImageError, OSError) as err:
        raise GenlabError(
            f"image file {path} cannot be read ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}):"
            " it is corrupt or not an image. Remove or replace it."
        ) from None


@dataclass
class TensorSplit:
    """One split held in memory: uint8 images (N, C, H, W) and int64 labels (N,)."""

    images: Tensor
    labels: Tensor

    def subset(self, index: Tensor) -> TensorSplit:
        return TensorSplit(self.images[index], self.labels[index])

    def concat(self, other: TensorSplit) -> TensorSplit:
        return TensorSplit(torch.cat([self.images, other.images]), torch.cat([self.labels, other.labels]))


class InMemoryImages(Dataset):
    """Indexed with a list of indices, returns a whole batch ``(images in [-1, 1], labels)``.

    ``transform`` (per sample, on float images in [0, 1]) runs only when given: training batches.
    """

    def __init__(self, split: TensorSplit, transform: Callable[[Tensor], Tensor] | None = None) -> None:
        self.images = split.images
        self.labels = split.labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def load_uint8(self, i: int) -> Tensor:
        """The i-th image as uint8 (C, H, W), without augmentation."""
        return self.images[i]

    def __getitem__(self, index: Sequence[int] | Tensor) -> tuple[Tensor, Tensor]:
        index = torch.as_tensor(index, dtype=torch.long)
        images = self.images[index].float().div_(255)
        if self.transform is not None:
            images = torch.stack([self.transform(image) for image in images]).clamp_(0, 1)
        return to_model_range(images), self.labels[index]


class FileImages(Dataset):
    """Reads one image file per sample: optional center crop, resize, per-sample transform."""

    def __init__(
        self,
        paths: Sequence[Path],
        labels: Sequence[int],
        image_size: int,
        channels: int,
        center_crop: int | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.labels = torch.as_tensor(list(labels), dtype=torch.long)
        self.image_size = image_size
        self.channels = channels
        self.center_crop = center_crop
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def load_uint8(self, i: int) -> Tensor:
        """The i-th image as uint8 (C, H, W), cropped and resized, without augmentation."""
        image = read_image_uint8(self.paths[i], "L" if self.channels == 1 else "RGB")
        if self.center_crop:
            image = TF.center_crop(image, [self.center_crop, self.center_crop])
        return TF.resize(image, [self.image_size, self.image_size], antialias=True)

    def subset(self, index: Tensor) -> FileImages:
        """The images ``index`` (no transform)."""
        return FileImages(
            [self.paths[i] for i in index.tolist()],
            self.labels[index].tolist(),
            self.image_size,
            self.channels,
            center_crop=self.center_crop,
        )

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        image = self.load_uint8(i).float().div_(255)
        if self.transform is not None:
            image = self.transform(image).clamp_(0, 1)
        return to_model_range(image), self.labels[i]
