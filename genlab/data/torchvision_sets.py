"""MNIST, Fashion-MNIST (IDX files) and CIFAR-10 (pickled python batches), held in memory.

Files are read from torchvision's on-disk layout; when they are missing, torchvision's download
is tried, and if that fails too the error names the folder, the files and the manual step.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from hydra.utils import get_class

from genlab.data.base import ImageDataModule
from genlab.data.datasets import TensorSplit, resize_uint8
from genlab.errors import DatasetNotFoundError, GenlabError

# Default validation share of the official training set when data.val_size is null (at most 5,000 images).
VAL_FRACTION, VAL_MAX = 1 / 12, 5000


def _fixed_val_split(train: TensorSplit, val_size: int | None, seed: int) -> tuple[TensorSplit, TensorSplit]:
    n = len(train.labels)
    if val_size is None:
        val_size = max(1, min(VAL_MAX, round(n * VAL_FRACTION)))
    if n < 2 or not 0 < val_size < n:
        raise GenlabError(
            f"data.val_size={val_size} must be between 1 and {n - 1} (the training set holds {n} images); "
            "leave it null for 1/12 of the training set, at most 5,000."
        )
    order = torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(seed))
    return train.subset(order[val_size:]), train.subset(order[:val_size])


def _download_or_explain(
    download: bool, try_download: Any, name: str, folder: Path, files: list[str], url: str
) -> None:
    reason = "data.download=false"
    if download:
        try:
            try_download()
            return
        except Exception as err:
            reason = f"download failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    listing = ", ".join(files)
    raise DatasetNotFoundError(
        f"dataset '{name}' not found: expected {listing} in {folder} ({reason}). "
        f"Download them from {url} (by hand if this machine is offline), put them in {folder}, "
        f"or point data.root at the folder that holds them."
    )


class IDXDataModule(ImageDataModule):
    """MNIST-format datasets through a torchvision class (``torchvision.datasets.MNIST``,
    ``FashionMNIST``), which reads ``<root>/<ClassName>/raw/*-ubyte``.

    Args:
        dataset_class: import path of the torchvision dataset class.
        download: try torchvision's download when the files are missing.
        val_size: images of the official training set held out for validation (fixed seed).
    """

    def __init__(
        self,
        dataset_class: str = "torchvision.datasets.MNIST",
        download: bool = True,
        val_size: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.dataset_class = get_class(dataset_class)
        self.download = download
        self.val_size = val_size

    def _read(self, train: bool) -> TensorSplit:
        cls = self.dataset_class
        root = str(self.root)
        try:
            dataset = cls(root, train=train, download=False)
        except RuntimeError:
            folder = Path(root) / cls.__name__ / "raw"
            files = [Path(url).name.removesuffix(".gz") for url, _ in cls.resources]
            _download_or_explain(
                self.download, lambda: cls(root, train=train, download=True), self.name, folder, files, cls.mirrors[0]
            )
            dataset = cls(root, train=train, download=False)
        images = resize_uint8(dataset.data.unsqueeze(1), self.image_size)
        return TensorSplit(images, torch.as_tensor(dataset.targets, dtype=torch.long))

    def load_splits(self) -> dict[str, TensorSplit]:
        train, val = _fixed_val_split(self._read(train=True), self.val_size, self.split_seed)
        return {"train": train, "val": val, "test": self._read(train=False)}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches (dicts of bytes, lists and numpy arrays) and nothing else."""

    ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("_codecs", "encode"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch file → (uint8 images N×3×32×32, int64 labels N)."""
    try:
        with open(path, "rb") as handle:
            entry = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as err:
        raise GenlabError(f"'{path}' is not a CIFAR-10 python batch file ({err}).") from None
    return data, labels


class CIFAR10DataModule(ImageDataModule):
    """CIFAR-10 from ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}``.

    Args:
        download: try torchvision's download when the files are missing.
        val_size: training images held out for validation (fixed seed).
    """

    TRAIN_FILES: ClassVar[tuple[str, ...]] = tuple(f"data_batch_{i}" for i in range(1, 6))
    TEST_FILES: ClassVar[tuple[str, ...]] = ("test_batch",)
    URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"

    def __init__(self, download: bool = True, val_size: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.download = download
        self.val_size = val_size

    def _read(self, names: list[str]) -> TensorSplit:
        parts = [read_cifar_batch(self.root / "cifar-10-batches-py" / name) for name in names]
        images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
        labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
        return TensorSplit(resize_uint8(images, self.image_size), labels)

    def load_splits(self) -> dict[str, TensorSplit]:
        folder = self.root / "cifar-10-batches-py"
        files = self.TRAIN_FILES + self.TEST_FILES
        if not all((folder / name).is_file() for name in files):
            from torchvision.datasets import CIFAR10

            _download_or_explain(
                self.download,
                lambda: CIFAR10(str(self.root), train=True, download=True),
                self.name,
                folder,
                files,
                f"{self.URL} (extract the archive into {self.root})",
            )
        train, val = _fixed_val_split(self._read(self.TRAIN_FILES), self.val_size, self.split_seed)
        return {"train": train, "val": val, "test": self._read(self.TEST_FILES)}
