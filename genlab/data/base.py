"""The LightningDataModule that every genlab dataset builds on: splits, few-shot subsets, loaders.

Subclasses implement :meth:`ImageDataModule.load_splits`; the datasets themselves are in
:mod:`genlab.data.datasets`. Batches are ``(images in [-1, 1], int64 labels)``, -1 where a dataset
has no labels.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler, RandomSampler, SequentialSampler

from genlab.data.classes import select_splits
from genlab.data.datasets import FileImages, InMemoryImages, TensorSplit
from genlab.data.device import IndexBatches, check_on_device, resident_copy
from genlab.data.sampling import MixedBatchSampler, synthetic_share
from genlab.errors import GenlabError

SPLITS = ("train", "val", "test")


def fingerprint(data: Dataset) -> str:
    """A hash of what a split holds: its uint8 images and labels, or its files' paths, sizes and mtimes.

    Anything cached from data (reference classifiers, real statistics, synthetic pools) is keyed by
    it, so two folders of the same shape never share a cache entry.
    """
    digest = hashlib.sha256()
    images = getattr(data, "images", None)
    if isinstance(images, Tensor):
        for name in ("inputs", "images", "labels"):
            tensor = getattr(data, name, None)
            if isinstance(tensor, Tensor):
                digest.update(name.encode())
                digest.update(str(tuple(tensor.shape)).encode())
                digest.update(tensor.contiguous().numpy().tobytes())
    else:
        for path in getattr(data, "paths", []):
            stat = Path(path).stat()
            digest.update(f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        labels = getattr(data, "labels", None)
        if isinstance(labels, Tensor):
            digest.update(labels.numpy().tobytes())
    return digest.hexdigest()[:16]


class ImageDataModule(LightningDataModule):
    """Base datamodule: subclasses implement :meth:`load_splits`; batching lives here.

    Args:
        name: dataset name used in run-folder names.
        channels, image_size, num_classes: what the dataset delivers (models interpolate them).
        root: folder holding the dataset's files.
        batch_size, num_workers: DataLoader settings.
        split_seed: seed of any random train/val/test partition.
        augmentation: the ``augment`` pipeline (an object with ``sample_transform`` and
            ``apply_batch``) applied to training batches only.
        hflip_p: probability of horizontal flips that augment pipelines use (0 where a mirror
            image changes the label, as for digits).
        train_per_class: keep only this many training images per class (few-shot studies);
            chosen with ``split_seed``, so every run with the same seed sees the same images.
        fid_features: default feature network of ``genlab eval`` for this dataset (``classifier``
            or ``inception``); read from the config by the evaluation code.
        epoch_size: training images per epoch (null = the training split's size). Few-shot studies
            set it so that every arm and subset size trains the same number of steps.
        on_device: keep an in-memory training split on the training device and gather batches there
            (see :mod:`genlab.data.device`).
        heldout_classes: classes a study holds out of its generators (see :mod:`genlab.data.classes`).
        classes: the classes this run keeps, relabelled 0..K'−1: null (all), ``seen``, ``heldout`` or a list;
            ``num_classes`` must then be their number.
        subset_seed: seed of the ``train_per_class`` choice (null: ``split_seed``), so that seeds of a few-shot
            study see different images while the train/val/test partition stays fixed.
    """

    def __init__(
        self,
        name: str,
        channels: int,
        image_size: int,
        num_classes: int,
        root: str | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        split_seed: int = 0,
        augmentation: object | None = None,
        hflip_p: float = 0.5,
        train_per_class: int | None = None,
        fid_features: str = "inception",
        epoch_size: int | None = None,
        on_device: bool = False,
        heldout_classes: list[int] | None = None,
        classes: str | list[int] | None = None,
        subset_seed: int | None = None,
    ) -> None:
        super().__init__()
        if image_size < 4:
            raise GenlabError(f"data.image_size={image_size} is too small: use at least 4 pixels.")
        if batch_size < 1:
            raise GenlabError(f"data.batch_size={batch_size} must be at least 1.")
        if epoch_size is not None and epoch_size < 1:
            raise GenlabError(f"data.epoch_size={epoch_size} must be at least 1 (or null for the split's size).")
        self.name = name
        self.channels = channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.root = Path(root).expanduser() if root else None
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.split_seed = split_seed
        self.augmentation = augmentation
        self.hflip_p = hflip_p
        self.train_per_class = train_per_class
        self.fid_features = fid_features
        self.epoch_size = epoch_size
        self.synthetic: TensorSplit | None = None
        self.synthetic_ratio = 0.0
        self.on_device = on_device
        self.heldout_classes = heldout_classes
        self.classes = classes
        self.subset_seed = split_seed if subset_seed is None else subset_seed
        self.class_ids: list[int] = list(range(num_classes))
        self.datasets: dict[str, Dataset] = {}
        self._resident: Dataset | None = None

    def load_splits(self) -> dict[str, TensorSplit | FileImages]:
        """Read the dataset; return its train/val/test splits at ``image_size``."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        transform = getattr(self.augmentation, "sample_transform", None)
        splits = self.load_splits()
        if self.classes is not None or self.heldout_classes is not None:
            splits, self.class_ids = select_splits(
                splits, self.classes, self.heldout_classes, self.num_classes, self.name
            )
        if self.train_per_class is not None:
            splits["train"] = self._few_shot(splits["train"])
        for split, data in splits.items():
            if isinstance(data, TensorSplit) and data.images.shape[1] != self.channels:
                have = data.images.shape[1]
                raise GenlabError(
                    f"data.channels={self.channels}, but data={self.name} holds {have}-channel images: keep "
                    f"data.channels={have} (models read it to size their networks)."
                )
            if isinstance(data, TensorSplit):
                self.datasets[split] = InMemoryImages(data, transform if split == "train" else None)
            else:
                data.transform = transform if split == "train" else None
                self.datasets[split] = data
        check_on_device(
            self.on_device, self.datasets["train"], isinstance(self.datasets["train"], InMemoryImages), self.name
        )

    def _few_shot(self, train: TensorSplit | FileImages) -> TensorSplit | FileImages:
        """The first ``train_per_class`` images of each class in a fixed random order (``subset_seed``)."""
        n = self.train_per_class
        if self.num_classes < 1:
            raise GenlabError(f"data.train_per_class={n} needs a labelled dataset; data={self.name} has no labels.")
        if n < 1:
            raise GenlabError(f"data.train_per_class={n} must be at least 1.")
        labels = train.labels
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.subset_seed))
        keep = []
        for label in range(self.num_classes):
            members = order[labels[order] == label]
            if len(members) < n:
                raise GenlabError(
                    f"data.train_per_class={n} is larger than the {len(members)} training images of class "
                    f"{self.class_ids[label]} in data={self.name}: use at most "
                    f"{int(torch.bincount(labels, minlength=self.num_classes).min())}."
                )
            keep.append(members[:n])
        return train.subset(torch.cat(keep).sort().values)

    def dataset(self, split: str) -> Dataset:
        """The dataset of one split (``train``, ``val`` or ``test``), loading it on first use."""
        self.setup()
        if split not in self.datasets:
            raise GenlabError(
                f"split={split} does not exist for data={self.name}: choose one of {sorted(self.datasets)}."
            )
        return self.datasets[split]

    def fingerprint(self, split: str) -> str:
        """A hash of the images and labels of ``split`` (see :func:`fingerprint`)."""
        return fingerprint(self.dataset(split))

    def dataloader(
        self, split: str, shuffle: bool = False, drop_last: bool = False, num_samples: int | None = None
    ) -> DataLoader:
        """A DataLoader over one split; in-memory splits are sliced a whole batch at a time.

        ``num_samples`` draws that many images per pass (random order, continuing without
        replacement across the split), for ``data.epoch_size``.
        """
        dataset = self.dataset(split)
        trainer = getattr(self, "trainer", None)
        world = trainer.world_size if trainer is not None else 1
        generator = torch.Generator().manual_seed(self.split_seed + 1)
        if num_samples is not None:
            if world > 1:
                raise GenlabError("data.epoch_size is not supported with several processes (DDP): leave it null.")
            sampler = RandomSampler(range(len(dataset)), num_samples=num_samples, generator=generator)
        elif world > 1:
            sampler = DistributedSampler(
                range(len(dataset)), num_replicas=world, rank=trainer.global_rank, shuffle=shuffle, seed=self.split_seed
            )
        elif shuffle:
            sampler = RandomSampler(range(len(dataset)), generator=generator)
        else:
            sampler = SequentialSampler(range(len(dataset)))
        common = {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}
        if isinstance(dataset, InMemoryImages):
            batches = BatchSampler(sampler, self.batch_size, drop_last=drop_last)
            if self.on_device and split == "train":
                dataset = IndexBatches(len(dataset))
            return DataLoader(dataset, sampler=batches, batch_size=None, **common)
        return DataLoader(dataset, sampler=sampler, batch_size=self.batch_size, drop_last=drop_last, **common)

    def real_train_split(self) -> TensorSplit:
        """The real training images in memory (the split generators and synthetic pools are built from)."""
        train = self.dataset("train")
        if not isinstance(train, InMemoryImages):
            raise GenlabError(
                f"synthetic training images need an in-memory dataset (digits, mnist, fashion_mnist, cifar10); "
                f"data={self.name} is read from files."
            )
        return TensorSplit(train.images, train.labels)

    def add_synthetic(self, pool: TensorSplit, ratio: float) -> None:
        """Mix ``pool`` (uint8 images, labels) into training batches: a share ``ratio`` of each batch."""
        real = self.real_train_split()
        if pool.images.shape[1:] != real.images.shape[1:]:
            raise GenlabError(
                f"the synthetic images have shape {tuple(pool.images.shape[1:])} but data={self.name} has "
                f"{tuple(real.images.shape[1:])} (channels, height, width): the generator must make images of "
                "the classifier's size and channels."
            )
        if self.on_device:
            raise GenlabError("data.on_device=true does not combine with synthetic training images: leave it false.")
        self.synthetic, self.synthetic_ratio = pool, ratio

    def train_dataloader(self) -> DataLoader:
        epoch_images = self.epoch_size or len(self.dataset("train"))
        if self.synthetic is not None:
            return self._mixed_dataloader(epoch_images)
        return self.dataloader(
            "train", shuffle=True, drop_last=epoch_images > self.batch_size, num_samples=self.epoch_size
        )

    def _mixed_dataloader(self, epoch_images: int) -> DataLoader:
        """Batches of the same size and number as without synthetic images, a fixed share synthetic."""
        real = self.real_train_split()
        train = self.dataset("train")
        trainer = getattr(self, "trainer", None)
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        batch_size = min(self.batch_size, epoch_images)
        sampler = MixedBatchSampler(
            len(real.labels),
            len(self.synthetic.labels),
            batch_size,
            synthetic_share(batch_size, self.synthetic_ratio),
            max(1, epoch_images // batch_size // world),
            seed=self.split_seed + 1 + rank,
        )
        mixed = InMemoryImages(real.concat(self.synthetic), train.transform)
        common = {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}
        return DataLoader(mixed, sampler=sampler, batch_size=None, **common)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")

    def resident_train(self, device: torch.device) -> Dataset:
        """The training split with its tensors on ``device`` (``on_device``), copied there once."""
        if self._resident is None or self._resident.images.device != device:
            self._resident = resident_copy(self.dataset("train"), device)
        return self._resident

    def on_after_batch_transfer(self, batch: tuple[Tensor, Tensor], dataloader_idx: int) -> tuple[Tensor, Tensor]:
        if isinstance(batch, Tensor):  # an index batch of the device-resident training split
            batch = self.resident_train(batch.device)[batch]
        trainer = getattr(self, "trainer", None)
        if self.augmentation is not None and trainer is not None and trainer.training:
            return self.augmentation.apply_batch(*batch)
        return batch
