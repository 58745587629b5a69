"""Datasets read from image files: CelebA (aligned faces) and any folder of images."""

from __future__ import annotations

import logging
from pathlib import Path

from genlab.data.base import ImageDataModule
from genlab.data.datasets import FileImages, list_images, split_indices
from genlab.errors import DatasetNotFoundError, GenlabError

log = logging.getLogger("genlab")


class CelebADataModule(ImageDataModule):
    """CelebA aligned faces, center-cropped to ``crop`` then resized (the DCGAN tutorial's recipe).

    Reads torchvision's layout ``<root>/celeba/img_align_celeba/*.jpg`` with
    ``<root>/celeba/list_eval_partition.txt`` (the official split), and also a plain
    ``<root>/img_align_celeba/`` folder, because torchvision's Google-Drive download often fails.
    Without a partition file the images are split at random with ``split_seed``.
    """

    def __init__(self, crop: int = 178, val_fraction: float = 0.05, test_fraction: float = 0.05, **kwargs) -> None:
        super().__init__(**kwargs)
        self.crop = crop
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def _image_folder(self) -> Path:
        for candidate in (self.root / "celeba" / "img_align_celeba", self.root / "img_align_celeba"):
            if candidate.is_dir() and list_images(candidate):
                return candidate
        raise DatasetNotFoundError(
            f"dataset 'celeba' not found: expected aligned face images (000001.jpg, ...) in "
            f"{self.root / 'celeba' / 'img_align_celeba'} or {self.root / 'img_align_celeba'}, "
            f"optionally with list_eval_partition.txt beside that folder. Download img_align_celeba.zip "
            f"and list_eval_partition.txt from the CelebA website (mmlab.ie.cuhk.edu.hk/projects/CelebA.html) "
            f"by hand, unzip them there, or point data.root at the folder that holds them."
        )

    def load_splits(self) -> dict[str, FileImages]:
        folder = self._image_folder()
        paths = list_images(folder)
        partition_file = folder.parent / "list_eval_partition.txt"
        if partition_file.is_file():
            by_name = {p.name: p for p in paths}
            groups: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
            names = ("train", "val", "test")
            for line_no, line in enumerate(partition_file.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    name, part = line.split()
                    split = names[int(part)]
                except (ValueError, IndexError):
                    raise GenlabError(f"{partition_file}:{line_no}: expected '<file> <0|1|2>', got '{line}'.") from None
                if name in by_name:
                    groups[split].append(by_name[name])
        else:
            parts = split_indices(len(paths), self.val_fraction, self.test_fraction, self.split_seed)
            groups = {split: [paths[i] for i in idx.tolist()] for split, idx in parts.items()}
        empty = [split for split, files in groups.items() if not files]
        if empty:
            raise GenlabError(f"celeba: the {', '.join(empty)} split(s) under {folder} hold no images.")
        return {
            split: FileImages(files, [-1] * len(files), self.image_size, self.channels, center_crop=self.crop)
            for split, files in groups.items()
        }


class ImageFolderDataModule(ImageDataModule):
    """Any folder of images: with class subfolders (``root/<class>/*.png``, labelled by sorted
    folder name) or flat (``root/*.png``, unlabelled). Split at random with ``split_seed``.
    """

    def __init__(
        self, val_fraction: float = 0.1, test_fraction: float = 0.1, center_crop: int | None = None, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.center_crop = center_crop

    def load_splits(self) -> dict[str, FileImages]:
        if self.root is None or not self.root.is_dir():
            raise DatasetNotFoundError(
                f"data.root={self.root} is not a folder. Set data.root to a folder of images "
                "(root/*.png, or root/<class_name>/*.png for labelled data)."
            )
        classes = sorted(p for p in self.root.iterdir() if p.is_dir() and list_images(p))
        if classes and self.num_classes == 0:
            log.info(
                "data.root=%s holds %d class folders; data.num_classes=0, so their images are read unlabelled "
                "(set data.num_classes=%d for labels)",
                self.root,
                len(classes),
                len(classes),
            )
            paths = [path for folder in classes for path in list_images(folder)]
            labels = [-1] * len(paths)
        elif classes:
            paths, labels = [], []
            for label, folder in enumerate(classes):
                files = list_images(folder)
                paths += files
                labels += [label] * len(files)
            if self.num_classes != len(classes):
                raise GenlabError(
                    f"data.root={self.root} holds {len(classes)} class folders but data.num_classes="
                    f"{self.num_classes}: pass data.num_classes={len(classes)}."
                )
        else:
            paths = list_images(self.root)
            labels = [-1] * len(paths)
        if len(paths) < 3:
            raise DatasetNotFoundError(
                f"data.root={self.root} holds {len(paths)} images (png, jpg ...): "
                "put at least 3 images there, flat or in one subfolder per class."
            )
        parts = split_indices(len(paths), self.val_fraction, self.test_fraction, self.split_seed)
        return {
            split: FileImages(
                [paths[i] for i in idx.tolist()],
                [labels[i] for i in idx.tolist()],
                self.image_size,
                self.channels,
                center_crop=self.center_crop,
            )
            for split, idx in parts.items()
        }
