"""Data path: genlab's datamodule (per-sample and on-device augmentation) against torchvision's
per-sample PIL pipeline of the same transforms, on the same training images."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torchvision
from omegaconf import DictConfig
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from genlab.build import instantiate_datamodule
from genlab.data.formats import write_cifar10, write_mnist
from scripts.bench.common import Settings, compose_train, row, sync

DATASETS = ("digits", "mnist", "cifar10")


def write_fixture_data(root: Path, n_train: int) -> None:
    """MNIST IDX and CIFAR-10 pickled batches of ``n_train`` training images, written in their real formats."""
    write_mnist(root, "MNIST", n_train=n_train, n_test=max(20, n_train // 6))
    write_cifar10(root, per_batch=max(12, n_train // 5))


def torchvision_dataset(name: str, root: Path, datamodule: Any, transform: Any) -> Any:
    """The same training images through torchvision's dataset classes (PIL images per sample)."""
    if name == "mnist":
        return torchvision.datasets.MNIST(str(root), train=True, transform=transform, download=False)
    if name == "cifar10":

        class FixtureCIFAR10(torchvision.datasets.CIFAR10):
            def _check_integrity(self) -> bool:  # the fixture files do not have the official checksums
                return True

            def _load_meta(self) -> None:  # the fixture has no batches.meta file
                self.classes = [str(k) for k in range(10)]
                self.class_to_idx = {c: k for k, c in enumerate(self.classes)}

        return FixtureCIFAR10(str(root), train=True, transform=transform, download=False)

    images = datamodule.dataset("train").images  # digits: no torchvision class; the same uint8 images as PIL

    class PILDigits(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int):
            return transform(Image.fromarray(images[i, 0].numpy(), mode="L")), 0

    return PILDigits()


def torchvision_pipeline(cfg: DictConfig) -> Any:
    """The tutorial pipeline equivalent of ``augment=basic``: v2 transforms on PIL images, then tensor + normalize."""
    c, size = cfg.data.channels, cfg.data.image_size
    steps = [
        v2.Resize(size),
        v2.RandomHorizontalFlip(cfg.data.hflip_p),
        v2.RandomCrop(size, padding=4),
        v2.ColorJitter(0.2, 0.2, 0.2),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.GaussianNoise(0.0, 0.03),
        v2.Normalize([0.5] * c, [0.5] * c),
    ]
    return v2.Compose(steps)


def images_per_s(batches: Callable[[], Iterator], rounds: int, device: torch.device, step=None) -> float:
    """Median images/s over ``rounds`` full passes (after one warm-up pass)."""
    rates = []
    for r in range(rounds + 1):
        sync(device)
        start, n = time.perf_counter(), 0
        for batch in batches():
            if step is not None:
                batch = step(batch)
            n += len(batch[0])
        sync(device)
        if r:
            rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_data(name: str, settings: Settings, device: torch.device, root: Path, tmp: Path) -> list[dict]:
    """genlab's datamodule (per-sample and on-device augmentation) vs torchvision's PIL pipeline."""
    common = [f"data={name}", "augment=basic", f"paths.data_dir={root}"]
    if name != "digits":
        common += ["data.download=false", f"data.val_size={max(1, settings.data_images // 10)}"]
    rows = []
    cfg = compose_train(common, tmp / f"data_{name}")
    dm = instantiate_datamodule(cfg)
    dm.setup("fit")
    genlab = images_per_s(dm.train_dataloader, settings.data_rounds, device, lambda b: (b[0].to(device), b[1]))
    dataset = torchvision_dataset(name, root, dm, torchvision_pipeline(cfg))
    loader = DataLoader(
        dataset,
        batch_size=dm.batch_size,
        shuffle=True,
        drop_last=len(dataset) > dm.batch_size,  # as genlab's train_dataloader
        num_workers=dm.num_workers,
    )
    baseline = images_per_s(lambda: iter(loader), settings.data_rounds, device, lambda b: (b[0].to(device), b[1]))
    label = f"{name} {cfg.data.image_size}px augment=basic bs{dm.batch_size} workers={dm.num_workers}"
    rows.append(row("data", f"{label}: per-sample", genlab, baseline, goal="≥ 3", unit="img/s"))

    for data_on_device in (False, True) if device.type == "cuda" else (False,):
        flags = ["augment.on_device=true", f"data.on_device={str(data_on_device).lower()}"]
        cfg = compose_train([*common, *flags], tmp / f"data_{name}_dev")
        dm = instantiate_datamodule(cfg)
        dm.setup("fit")

        def on_device(batch, dm=dm):
            if isinstance(batch, torch.Tensor):  # data.on_device: an index batch, gathered on the device
                return dm.augmentation.apply_batch(*dm.resident_train(device)[batch.to(device)])
            return dm.augmentation.apply_batch(batch[0].to(device), batch[1].to(device))

        rate = images_per_s(dm.train_dataloader, settings.data_rounds, device, on_device)
        what = "augment.on_device" + (" + data.on_device" if data_on_device else "")
        rows.append(row("data", f"{label}: {what} ({device.type})", rate, baseline, goal="≥ 3", unit="img/s"))
    return rows
