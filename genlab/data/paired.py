"""Paired datasets for image-to-image translation (pix2pix).

A paired datamodule delivers batches ``(A, B)``: two float tensors in [-1, 1], the input A
(N, input_channels, S, S) and the target B (N, channels, S, S) of the same pixels. Training
batches get the same random crop and flip on A and B.

- :class:`PairedFolderDataModule` reads the standard pix2pix layout, ``root/{train,val,test}/*.jpg``
  with A and B side by side in each file.
- :class:`EdgesDataModule` turns any in-memory image dataset into pairs (thresholded Sobel edge
  map → image), e.g. ``data=edges2digits``, which works offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from genlab.data.base import ImageDataModule
from genlab.data.datasets import TensorSplit, list_images
from genlab.data.pair_datasets import InMemoryPairs, PairedFiles, PairSplit, sobel_edges
from genlab.errors import DatasetNotFoundError, GenlabError

PAIRED_DATASETS = (
    "data=edges2digits, data=paired_folder (pix2pix A|B images), or data=edges data@data.source=<digits, mnist, "
    "fashion_mnist or cifar10> (edge maps of any in-memory dataset)"
)
DIRECTIONS = ("AtoB", "BtoA")


class PairedDataModule(ImageDataModule):
    """Base of the paired datamodules: batches are ``(A, B)`` in [-1, 1] (see the module docstring).

    Args:
        input_channels: channels of the inputs A (``channels`` is that of the targets B).
        **kwargs: :class:`ImageDataModule` arguments; ``hflip_p`` is the joint flip probability.
    """

    def __init__(self, input_channels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        augmentation = self.augmentation
        if getattr(augmentation, "sample_transform", None) is not None or getattr(
            augmentation, "batch_transforms", None
        ):
            raise GenlabError(
                f"augment={augmentation.name} does not apply to paired data: A and B must get the same "
                f"transforms, and data={self.name} already crops and flips them jointly. Use augment=none."
            )
        self.input_channels = input_channels

    def load_splits(self) -> dict[str, PairSplit | PairedFiles]:
        """Read the dataset; return its train/val/test splits of pairs at ``image_size``."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        for split, data in self.load_splits().items():
            train = split == "train"
            self.datasets[split] = (
                InMemoryPairs(data, self.hflip_p if train else 0.0) if isinstance(data, PairSplit) else data
            )

    def fixed_pairs(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        """The first ``n`` pairs of ``split`` without random transforms: ``(A, B)`` in [-1, 1]."""
        dataset = self.dataset(split)
        return dataset.eval_pairs(list(range(min(n, len(dataset)))))


class EdgesDataModule(PairedDataModule):
    """Edge map → image pairs built from an in-memory image dataset (``source``).

    The input A is the thresholded Sobel edge map of the image (1 channel, white edges on black),
    the target B is the image itself. The splits are the source's.

    Args:
        source: the data config of the image dataset (a node with ``_target_``).
        threshold: edge threshold on the Sobel magnitude (a black-to-white step scores 1).
    """

    def __init__(self, source: Mapping[str, Any], threshold: float = 0.2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 < threshold < 1.5:
            raise GenlabError(f"data.threshold={threshold} must lie between 0 and 1.5 (a sharp step scores 1).")
        self.source = instantiate(source, _recursive_=False)
        self.threshold = threshold
        if self.source.image_size != self.image_size or self.source.channels != self.channels:
            raise GenlabError(
                f"data.image_size / data.channels ({self.image_size}, {self.channels}) differ from the source "
                f"dataset's ({self.source.image_size}, {self.source.channels}): set data.source.image_size instead."
            )

    def load_splits(self) -> dict[str, PairSplit]:
        pairs = {}
        for split, data in self.source.load_splits().items():
            if not isinstance(data, TensorSplit):
                raise GenlabError(
                    f"data.source={self.source.name} is read from files, but edge pairs need an in-memory dataset: "
                    "use digits, mnist, fashion_mnist or cifar10 (data@data.source=mnist), or data=paired_folder."
                )
            edges = torch.cat(
                [sobel_edges(chunk.float().div(255), self.threshold) for chunk in data.images.split(4096)]
            )
            pairs[split] = PairSplit(edges.mul_(255).to(torch.uint8), data.images, data.labels)
        return pairs


class PairedFolderDataModule(PairedDataModule):
    """The pix2pix datasets' layout: ``root/{train,val,test}/*.jpg``, each image A|B side by side.

    Args:
        direction: ``AtoB`` (left half → right half) or ``BtoA``.
        load_size: training images are resized to this, then randomly cropped to ``image_size``.
        splits: folder name of each split under ``root`` (e.g. ``splits.test=val`` for datasets
            such as edges2shoes that ship no test folder).
    """

    def __init__(
        self,
        direction: str = "AtoB",
        load_size: int = 286,
        splits: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if direction not in DIRECTIONS:
            raise GenlabError(f"data.direction={direction} is not one of {', '.join(DIRECTIONS)}.")
        if load_size < self.image_size:
            raise GenlabError(
                f"data.load_size={load_size} is smaller than data.image_size={self.image_size}: images are "
                "resized to load_size and then cropped to image_size."
            )
        self.direction = direction
        self.load_size = load_size
        self.splits = dict(splits or {"train": "train", "val": "val", "test": "test"})

    def _split_files(self, split: str, folder_name: str) -> list[Path]:
        folder = self.root / folder_name
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"data.root={self.root} has no '{folder_name}' folder for the {split} split: the pix2pix layout "
                "is root/train, root/val and root/test holding A|B images side by side. For a dataset without "
                f"that folder, point data.splits.{split} at another one (e.g. data.splits.test=val)."
            )
        paths = list_images(folder)
        if not paths:
            raise DatasetNotFoundError(f"data.root={self.root}: the {split} folder {folder} holds no images.")
        for path in paths:
            try:
                with Image.open(path) as pil:
                    width, height = pil.size
            except (UnidentifiedImageError, OSError) as err:
                raise GenlabError(
                    f"paired image {path} cannot be read ({type(err).__name__}): remove or replace it."
                ) from None
            if width != 2 * height:
                raise GenlabError(
                    f"paired image {path} is {width}×{height}: pix2pix pairs hold A and B side by side, so the "
                    "width must be twice the height. Fix or remove that file."
                )
        return paths

    def load_splits(self) -> dict[str, PairedFiles]:
        if self.root is None or not self.root.is_dir():
            raise DatasetNotFoundError(
                f"data.root={self.root} is not a folder: expected a pix2pix dataset root/{{train,val,test}}/*.jpg "
                "(A|B side by side), e.g. facades from http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/ "
                "extracted by hand, then data.root=<that folder>."
            )
        return {
            split: PairedFiles(
                self._split_files(split, folder_name),
                self.image_size,
                self.load_size,
                self.input_channels,
                self.channels,
                self.direction,
                train=split == "train",
                hflip_p=self.hflip_p,
            )
            for split, folder_name in self.splits.items()
        }
