"""Writers of torchvision's on-disk dataset formats (MNIST IDX files, CIFAR-10 pickled batches).

genlab reads these formats (:mod:`genlab.data.torchvision_sets`); writing them lets the tests and the
data-path benchmark build small datasets offline and read them through the real loaders.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def labelled_images(n: int, size: int, channels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 images (N, C, S, S) whose brightness encodes their label 0..9 (a mix-up is detectable)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    base = (labels * 25).astype(np.uint8)[:, None, None, None]
    noise = rng.integers(0, 5, size=(n, channels, size, size), dtype=np.uint8)
    return (base + noise).astype(np.uint8), labels.astype(np.int64)


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """MNIST IDX files (uncompressed): ``<prefix>-images-idx3-ubyte`` and ``<prefix>-labels-idx1-ubyte``."""
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, h, w) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 0x801, n) + labels.astype(np.uint8).tobytes()
    )


def write_mnist(root: Path, class_folder: str = "MNIST", n_train: int = 60, n_test: int = 20) -> None:
    """torchvision's layout ``<root>/<class_folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``."""
    raw = root / class_folder / "raw"
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = labelled_images(n, 28, 1, seed)
        write_idx(raw, prefix, images[:, 0], labels)


def write_cifar10(root: Path, per_batch: int = 12) -> None:
    """``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}``: pickled dicts of numpy arrays."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        images, labels = labelled_images(per_batch, 32, 3, i)
        entry = {"data": images.reshape(per_batch, -1), "labels": labels.tolist(), "batch_label": name}
        with open(folder / name, "wb") as handle:
            pickle.dump(entry, handle)
