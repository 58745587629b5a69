"""``data=unpaired_edges2digits``: CycleGAN's offline task, edge maps and digits from disjoint halves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from hydra.utils import instantiate
from torchvision.transforms import v2

from genlab.data.datasets import InMemoryImages, TensorSplit
from genlab.data.pair_datasets import sobel_edges
from genlab.data.unpaired import UnpairedDataModule, UnpairedImages
from genlab.errors import GenlabError


class UnpairedEdgesDataModule(UnpairedDataModule):
    """Unpaired edge maps → images from an in-memory image dataset (``source``), without training pairs.

    Training: A holds the Sobel edge maps (as ``data=edges2digits``) of one random half of the
    source's training images (chosen with ``split_seed``), B the images of the other half, so no
    training edge map has its image. Val/test: the true pairs of the source's val/test images.

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

    def _edges(self, split: TensorSplit) -> TensorSplit:
        """The edge maps of ``split``'s images (uint8, 0 or 255), computed as ``data=edges2digits`` does."""
        edges = torch.cat([sobel_edges(chunk.float().div(255), self.threshold) for chunk in split.images.split(4096)])
        return TensorSplit(edges.mul_(255).to(torch.uint8), split.labels)

    def load_splits(self) -> dict[str, UnpairedImages]:
        splits = {}
        for split, data in self.source.load_splits().items():
            if not isinstance(data, TensorSplit):
                raise GenlabError(
                    f"data.source={self.source.name} is read from files, but edge maps need an in-memory dataset: "
                    "use digits, mnist, fashion_mnist or cifar10 (data@data.source=mnist)."
                )
            if split != "train":
                splits[split] = UnpairedImages(InMemoryImages(self._edges(data)), InMemoryImages(data), True)
                continue
            order = torch.randperm(len(data.labels), generator=torch.Generator().manual_seed(self.split_seed))
            half = len(order) // 2
            flip = v2.RandomHorizontalFlip(self.hflip_p) if self.hflip_p > 0 else None
            edges = InMemoryImages(self._edges(data.subset(order[:half].sort().values)), flip)
            images = InMemoryImages(data.subset(order[half:].sort().values), flip)
            splits[split] = UnpairedImages(edges, images)
        return splits
