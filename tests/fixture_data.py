"""Small datasets written in each real on-disk format, for reading through the real loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from genlab.data.formats import write_cifar10, write_idx, write_mnist

__all__ = ["write_all", "write_cifar10", "write_idx", "write_mnist", "write_pairs"]


def write_celeba(root: Path, n: int = 12, size: tuple[int, int] = (178, 218)) -> None:
    """torchvision layout: <root>/celeba/img_align_celeba/*.jpg + list_eval_partition.txt."""
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    rng = np.random.default_rng(0)
    for i in range(1, n + 1):
        array = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(array).save(folder / f"{i:06d}.jpg")
        lines.append(f"{i:06d}.jpg {0 if i <= n - 4 else (1 if i <= n - 2 else 2)}")
    (root / "celeba" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")


def write_image_folder(root: Path, classes: int = 2, per_class: int = 6, size: int = 40) -> None:
    """<root>/<class_k>/*.png, brightness by class."""
    for k in range(classes):
        folder = root / f"class_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(np.full((size, size, 3), 40 + 100 * k + i, dtype=np.uint8)).save(folder / f"{i}.png")


def write_pairs(folder: Path, n: int, size: int = 32, suffix: str = ".jpg", seed: int = 0) -> None:
    """n pix2pix A|B images (2·size × size): A random noise, B its negative."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        a = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(folder / f"{i:03d}{suffix}")


def write_unpaired(root: Path, sizes: dict[str, int] | None = None, size: tuple[int, int] = (40, 36)) -> Path:
    """CycleGAN's layout root/{trainA,trainB,testA,testB}/*.png: constant RGB images whose value
    tags them (A: 10·i, B: 100 + 10·i), so a tag survives resizing, cropping and flipping."""
    sizes = sizes or {"trainA": 5, "trainB": 3, "testA": 2, "testB": 3}
    for folder, n in sizes.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            value = 10 * i + (100 if folder.endswith("B") else 0)
            image = np.full((size[1], size[0], 3), value, dtype=np.uint8)
            Image.fromarray(image).save(root / folder / f"{i:03d}.png")
    return root


def write_all(root: Path) -> Path:
    """Every fixture dataset under ``root`` (the value for paths.data_dir)."""
    write_mnist(root, "MNIST")
    write_mnist(root, "FashionMNIST")
    write_cifar10(root)
    write_celeba(root)
    write_image_folder(root / "folder")
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        write_pairs(root / "facades" / split, n, seed=len(split))
    write_unpaired(root / "horse2zebra")
    return root
