"""Unpaired datasets for unpaired image-to-image translation (CycleGAN).

An unpaired datamodule (:class:`UnpairedDataModule`) delivers batches ``(A, B)``: float images in
[-1, 1] from two domains, A (N, input_channels, S, S) and B (N, channels, S, S), whose rows are
NOT pairs in training.

- Training: each domain is walked in its own random order (fresh permutations that continue
  across epochs, so every image of a domain is used once before any repeats). An epoch is
  ``max(len(A), len(B)) // batch_size`` full batches (``data.epoch_size`` images when set), as in
  the official code, whose epoch is the larger domain's length.
- Evaluation (val/test): row i holds A[i mod len(A)] and B[i mod len(B)], in order, for
  ``max(len(A), len(B))`` rows. Where a split keeps true pairs (:meth:`UnpairedDataModule.has_true_pairs`),
  both domains have the same length and row i is the pair (A_i, B_i).

:class:`UnpairedFolderDataModule` reads CycleGAN's folders (``data=unpaired_folder``);
:class:`UnpairedEdgesDataModule` builds ``data=unpaired_edges2digits`` offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from genlab.data.base import ImageDataModule, fingerprint
from genlab.data.datasets import FileImages, InMemoryImages, list_images, read_image_uint8
from genlab.errors import DatasetNotFoundError, GenlabError
from genlab.imaging import to_model_range

DOMAINS = ("A", "B")
Domain = InMemoryImages | FileImages


class DomainFiles(FileImages):
    """One domain read file by file. Training (``train=True``): resize to ``load_size``, random
    ``image_size`` crop, horizontal flip with ``hflip_p``; otherwise a plain resize to ``image_size``."""

    def __init__(
        self, paths: Sequence[Path], image_size: int, channels: int, load_size: int, train: bool, hflip_p: float
    ) -> None:
        super().__init__(paths, [-1] * len(paths), image_size, channels)
        self.load_size = load_size
        self.train = train
        self.hflip_p = hflip_p

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        if not self.train:
            return super().__getitem__(i)
        image = TF.resize(
            read_image_uint8(self.paths[i], "L" if self.channels == 1 else "RGB"),
            [self.load_size, self.load_size],
            antialias=True,
        )
        top, left, height, width = v2.RandomCrop.get_params(image, (self.image_size, self.image_size))
        image = TF.crop(image, top, left, height, width)
        if self.hflip_p > 0 and float(torch.rand(())) < self.hflip_p:
            image = image.flip(-1)
        return to_model_range(image.float().div_(255)), self.labels[i]


def gather(domain: Domain, index: Sequence[int], clean: bool = False) -> Tensor:
    """Images ``index`` of one domain in [-1, 1]; ``clean`` skips the random training transforms."""
    if clean:
        return to_model_range(torch.stack([domain.load_uint8(i) for i in index]).float().div_(255))
    if isinstance(domain, InMemoryImages):
        return domain[index][0]
    return torch.stack([domain[i][0] for i in index])


class UnpairedImages(Dataset):
    """Two domains of one split; indexed with ``(indices into A, indices into B)`` → batch ``(A, B)``.

    Args:
        a, b: the domains' datasets.
        true_pairs: A[i] and B[i] show the same content (val/test of ``unpaired_edges2digits``).
    """

    def __init__(self, a: Domain, b: Domain, true_pairs: bool = False) -> None:
        if true_pairs and len(a) != len(b):
            raise ValueError(f"true pairs need domains of one length, got {len(a)} and {len(b)}")
        self.domains = {"A": a, "B": b}
        self.true_pairs = true_pairs

    def __len__(self) -> int:
        return max(len(d) for d in self.domains.values())

    def __getitem__(self, index: tuple[Sequence[int], Sequence[int]]) -> tuple[Tensor, Tensor]:
        return gather(self.domains["A"], index[0]), gather(self.domains["B"], index[1])


class UnpairedBatchSampler(Sampler[tuple[list[int], list[int]]]):
    """``num_batches`` training batches of ``batch_size`` indices into A and, independently, into B.

    Each domain is a stream of fresh random permutations continuing across epochs.
    """

    def __init__(self, n_a: int, n_b: int, batch_size: int, num_batches: int, seed: int) -> None:
        self.sizes = {"A": n_a, "B": n_b}
        self.batch_size, self.num_batches = batch_size, num_batches
        self.generator = torch.Generator().manual_seed(seed)
        self.streams = {d: torch.empty(0, dtype=torch.long) for d in DOMAINS}

    def __len__(self) -> int:
        return self.num_batches

    def _take(self, domain: str) -> list[int]:
        while len(self.streams[domain]) < self.batch_size:
            order = torch.randperm(self.sizes[domain], generator=self.generator)
            self.streams[domain] = torch.cat([self.streams[domain], order])
        taken, self.streams[domain] = self.streams[domain][: self.batch_size], self.streams[domain][self.batch_size :]
        return taken.tolist()

    def __iter__(self) -> Iterator[tuple[list[int], list[int]]]:
        for _ in range(self.num_batches):
            yield self._take("A"), self._take("B")


def eval_batches(n_a: int, n_b: int, batch_size: int, rank: int = 0, world: int = 1) -> list[tuple[list, list]]:
    """Rows ``i = 0 .. max(n_a, n_b) - 1`` as ``(i mod n_a, i mod n_b)`` in batches; rank's share under DDP."""
    n = max(n_a, n_b)
    rows = [range(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    return [([i % n_a for i in r], [i % n_b for i in r]) for r in rows[rank::world]]


class UnpairedDataModule(ImageDataModule):
    """Base of the unpaired datamodules (the marker models check): batches ``(A, B)``, see the module docstring.

    Args:
        input_channels: channels of domain A (``channels`` is domain B's).
        **kwargs: :class:`ImageDataModule` arguments; ``hflip_p`` flips training images of each domain.
    """

    def __init__(self, input_channels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        augmentation = self.augmentation
        if getattr(augmentation, "sample_transform", None) is not None or getattr(
            augmentation, "batch_transforms", None
        ):
            raise GenlabError(
                f"augment={augmentation.name} does not apply to unpaired data: data={self.name} already crops and "
                "flips the images of each domain. Use augment=none."
            )
        for option, value in (("on_device", self.on_device), ("train_per_class", self.train_per_class)):
            if value is not None and value is not False:
                raise GenlabError(f"data.{option}={value} does not apply to unpaired data (data={self.name}).")
        self.input_channels = input_channels

    def load_splits(self) -> dict[str, UnpairedImages]:
        """Read the dataset; return its train/val/test splits, two domains each, at ``image_size``."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if not self.datasets:
            self.datasets.update(self.load_splits())

    def domain(self, split: str, domain: str) -> Domain:
        """The dataset of ``domain`` (``A`` or ``B``) in ``split``."""
        if domain not in DOMAINS:
            raise GenlabError(f"domain={domain} is not a domain of unpaired data: choose A or B.")
        return self.dataset(split).domains[domain]

    def fingerprint(self, split: str) -> str:
        """A hash of both domains' images and labels in ``split`` (see :func:`genlab.data.base.fingerprint`)."""
        both = "".join(fingerprint(self.domain(split, domain)) for domain in DOMAINS)
        return hashlib.sha256(both.encode()).hexdigest()[:16]

    def has_true_pairs(self, split: str) -> bool:
        """True where row i of ``split`` is a true pair (A_i, B_i): translations can be scored pixel by pixel."""
        return self.dataset(split).true_pairs

    def fixed_domain_images(self, split: str, n: int, domain: str) -> Tensor:
        """The first ``n`` images of ``domain`` in ``split`` without random transforms, in [-1, 1]."""
        images = self.domain(split, domain)
        return gather(images, range(min(n, len(images))), clean=True)

    def domain_batches(self, split: str, domain: str) -> Iterator[Tensor]:
        """Every image of ``domain`` in ``split`` in order, without random transforms, in batches (in [-1, 1])."""
        images = self.domain(split, domain)
        for start in range(0, len(images), self.batch_size):
            yield gather(images, range(start, min(start + self.batch_size, len(images))), clean=True)

    def fixed_pairs(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        """The first ``n`` images of each domain of ``split`` (true pairs only where :meth:`has_true_pairs`)."""
        return self.fixed_domain_images(split, n, "A"), self.fixed_domain_images(split, n, "B")

    def domain_labels(self, split: str, domain: str) -> Tensor:
        """Class labels of ``domain``'s images in ``split`` (int64, -1 where the dataset has none)."""
        return self.domain(split, domain).labels

    def dataloader(
        self, split: str, shuffle: bool = False, drop_last: bool = False, num_samples: int | None = None
    ) -> DataLoader:
        """Random unpaired batches (``shuffle``: ``num_samples`` rows or the larger domain's size) or rows in order."""
        dataset = self.dataset(split)
        trainer = getattr(self, "trainer", None)
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        n_a, n_b = (len(dataset.domains[d]) for d in DOMAINS)
        if shuffle:
            rows = num_samples or len(dataset)
            batch_size = min(self.batch_size, rows)
            sampler = UnpairedBatchSampler(
                n_a, n_b, batch_size, max(1, rows // batch_size // world), seed=self.split_seed + 1 + rank
            )
        else:
            sampler = eval_batches(n_a, n_b, self.batch_size, rank, world)
        common = {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}
        return DataLoader(dataset, sampler=sampler, batch_size=None, **common)


class UnpairedFolderDataModule(UnpairedDataModule):
    """CycleGAN's layout: ``root/<split>A`` and ``root/<split>B`` folders of images.

    Args:
        load_size: training images are resized to this, then randomly cropped to ``image_size``.
        splits: folder prefix of each split (default train → train, val → test, test → test).
    """

    def __init__(self, load_size: int = 286, splits: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if load_size < self.image_size:
            raise GenlabError(
                f"data.load_size={load_size} is smaller than data.image_size={self.image_size}: training images "
                "are resized to load_size and then cropped to image_size."
            )
        self.load_size = load_size
        self.splits = dict(splits or {"train": "train", "val": "test", "test": "test"})

    def _domain_files(self, split: str, folder_name: str, channels: int) -> DomainFiles:
        folder = self.root / folder_name
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"data.root={self.root}: root/{folder_name} is missing. The unpaired (CycleGAN) layout is "
                "root/trainA, root/trainB, root/testA and root/testB, each a folder of images (e.g. horse2zebra "
                "from https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/, extracted by hand)."
            )
        paths = list_images(folder)
        if not paths:
            raise DatasetNotFoundError(
                f"data.root={self.root}: root/{folder_name} holds no images (png, jpg, ...), so domain "
                f"{folder_name[-1]} of the {split} split is empty."
            )
        for path in paths:  # headers only: files that are no images fail here, not mid-training
            try:
                Image.open(path).close()
            except (UnidentifiedImageError, OSError) as err:
                raise GenlabError(f"cannot read the image file {path} ({err}): replace or remove it.") from None
        train = split == "train"
        return DomainFiles(paths, self.image_size, channels, self.load_size, train, self.hflip_p if train else 0.0)

    def load_splits(self) -> dict[str, UnpairedImages]:
        if self.root is None or not self.root.is_dir():
            raise DatasetNotFoundError(
                f"data.root={self.root} is not a folder: expected an unpaired dataset root/trainA, root/trainB, "
                "root/testA, root/testB (e.g. horse2zebra), then data.root=<that folder>."
            )
        return {
            split: UnpairedImages(
                self._domain_files(split, f"{prefix}A", self.input_channels),
                self._domain_files(split, f"{prefix}B", self.channels),
            )
            for split, prefix in self.splits.items()
        }
