"""Image datasets and the LightningDataModule that every genlab dataset builds on.

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
from PIL import Image
from pytorch_lightning import LightningDataModule
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
)
from torchvision.transforms.v2 import functional as TF

from genlab.data.device import IndexBatches, check_on_device, resident_copy
from genlab.errors import GenlabError

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def resize_uint8(images: Tensor, size: int) -> Tensor:
    """Resize a uint8 batch (N, C, H, W) to size×size with antialiased bilinear interpolation."""
    if images.shape[-2:] == (size, size):
        return images.contiguous()
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def to_model_range(images01: Tensor) -> Tensor:
    """[0, 1] → [-1, 1]."""
    return images01.mul(2).sub_(1)


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> dict[str, Tensor]:
    """A fixed random train/val/test partition of ``range(n)``."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test = round(n * test_fraction)
    n_val = round(n * val_fraction)
    return {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass
class TensorSplit:
    """One split held in memory: uint8 images (N, C, H, W) and int64 labels (N,)."""

    images: Tensor
    labels: Tensor

    def subset(self, index: Tensor) -> TensorSplit:
        return TensorSplit(self.images[index], self.labels[index])

    def concat(self, other: TensorSplit) -> TensorSplit:
        return TensorSplit(torch.cat([self.images, other.images]), torch.cat([self.labels, other.labels]))


class MixedBatchSampler(Sampler[list[int]]):
    """Batches over real + synthetic images with a fixed synthetic share (``n_synthetic`` per batch).

    Indices ``< n_real`` are real, the rest synthetic. Each pool is walked in a fresh random order
    that continues across epochs, so every real image is used before any repeats.
    """

    def __init__(
        self, n_real: int, n_pool: int, batch_size: int, n_synthetic: int, num_batches: int, seed: int
    ) -> None:
        self.n_real, self.n_pool = n_real, n_pool
        self.batch_size, self.n_synthetic, self.num_batches = batch_size, n_synthetic, num_batches
        self.generator = torch.Generator().manual_seed(seed)
        self.streams = {"real": torch.empty(0, dtype=torch.long), "pool": torch.empty(0, dtype=torch.long)}

    def __len__(self) -> int:
        return self.num_batches

    def _take(self, stream: str, size: int, count: int) -> Tensor:
        while len(self.streams[stream]) < count:
            order = torch.randperm(size, generator=self.generator)
            self.streams[stream] = torch.cat([self.streams[stream], order])
        taken, self.streams[stream] = self.streams[stream][:count], self.streams[stream][count:]
        return taken

    def __iter__(self):
        for _ in range(self.num_batches):
            real = self._take("real", self.n_real, self.batch_size - self.n_synthetic)
            pool = self._take("pool", self.n_pool, self.n_synthetic) + self.n_real
            yield torch.cat([real, pool]).tolist()


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
        self.mode = "L" if channels == 1 else "RGB"
        self.center_crop = center_crop
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def load_uint8(self, i: int) -> Tensor:
        """The i-th image as uint8 (C, H, W), cropped and resized, without augmentation."""
        with Image.open(self.paths[i]) as pil:
            image = TF.pil_to_tensor(pil.convert(self.mode))
        if self.center_crop:
            image = TF.center_crop(image, [self.center_crop, self.center_crop])
        return TF.resize(image, [self.image_size, self.image_size], antialias=True)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        image = self.load_uint8(i).float().div_(255)
        if self.transform is not None:
            image = self.transform(image).clamp_(0, 1)
        return to_model_range(image), self.labels[i]


class ImageDataModule(LightningDataModule):
    """Base datamodule: subclasses implement :meth:`load_splits`; batching lives here.

    Args:
        name: dataset name used in run-folder names.
        channels, image_size, num_classes: what the dataset delivers (models interpolate them).
        root: folder holding the dataset's files.
        batch_size, num_workers: DataLoader settings.
        split_seed: seed of any random train/val/test partition.
        augmentation: a :class:`genlab.augment.Augmentation` applied to training batches only.
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
    ) -> None:
        super().__init__()
        if image_size < 4:
            raise GenlabError(f"data.image_size={image_size} is too small: use at least 4 pixels.")
        if batch_size < 1:
            raise GenlabError(f"data.batch_size={batch_size} must be at least 1.")
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
        if epoch_size is not None and epoch_size < 1:
            raise GenlabError(f"data.epoch_size={epoch_size} must be at least 1 (or null for the split's size).")
        self.fid_features = fid_features
        self.epoch_size = epoch_size
        self.synthetic: TensorSplit | None = None
        self.synthetic_ratio = 0.0
        self.on_device = on_device
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
        if self.train_per_class is not None:
            splits["train"] = self._few_shot(splits["train"])
        for split, data in splits.items():
            if isinstance(data, TensorSplit):
                self.datasets[split] = InMemoryImages(data, transform if split == "train" else None)
            else:
                data.transform = transform if split == "train" else None
                self.datasets[split] = data
        check_on_device(
            self.on_device, self.datasets["train"], isinstance(self.datasets["train"], InMemoryImages), self.name
        )

    def _few_shot(self, train: TensorSplit | FileImages) -> TensorSplit | FileImages:
        """The first ``train_per_class`` images of each class in a fixed random order."""
        n = self.train_per_class
        if self.num_classes < 1:
            raise GenlabError(f"data.train_per_class={n} needs a labelled dataset; data={self.name} has no labels.")
        if n < 1:
            raise GenlabError(f"data.train_per_class={n} must be at least 1.")
        labels = train.labels
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.split_seed))
        keep = []
        for label in range(self.num_classes):
            members = order[labels[order] == label]
            if len(members) < n:
                raise GenlabError(
                    f"data.train_per_class={n} is larger than the {len(members)} training images of class {label} "
                    f"in data={self.name}: use at most {int(torch.bincount(labels, minlength=self.num_classes).min())}."
                )
            keep.append(members[:n])
        index = torch.cat(keep).sort().values
        if isinstance(train, TensorSplit):
            return train.subset(index)
        return FileImages(
            [train.paths[i] for i in index.tolist()],
            labels[index].tolist(),
            train.image_size,
            1 if train.mode == "L" else 3,
            center_crop=train.center_crop,
        )

    def dataset(self, split: str) -> Dataset:
        """The dataset of one split (``train``, ``val`` or ``test``), loading it on first use."""
        self.setup()
        if split not in self.datasets:
            raise GenlabError(
                f"split={split} does not exist for data={self.name}: choose one of {sorted(self.datasets)}."
            )
        return self.datasets[split]

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
        self.synthetic, self.synthetic_ratio = pool, ratio

    def _epoch_images(self) -> int:
        return self.epoch_size or len(self.dataset("train"))

    def train_dataloader(self) -> DataLoader:
        epoch_images = self._epoch_images()
        if self.synthetic is not None:
            return self._mixed_dataloader(epoch_images)
        return self.dataloader(
            "train", shuffle=True, drop_last=epoch_images > self.batch_size, num_samples=self.epoch_size
        )

    def _mixed_dataloader(self, epoch_images: int) -> DataLoader:
        """Batches of the same size and number as without synthetic images, a fixed share synthetic."""
        from genlab.augment.synthetic import synthetic_share

        real = self.real_train_split()
        train = self.dataset("train")
        trainer = getattr(self, "trainer", None)
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        batch_size = min(self.batch_size, epoch_images)
        num_batches = max(1, epoch_images // batch_size // world)
        sampler = MixedBatchSampler(
            len(real.labels),
            len(self.synthetic.labels),
            batch_size,
            synthetic_share(batch_size, self.synthetic_ratio),
            num_batches,
            seed=self.split_seed + 1 + rank,
        )
        if self.on_device:
            raise GenlabError("data.on_device=true does not combine with synthetic training images: leave it false.")
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
