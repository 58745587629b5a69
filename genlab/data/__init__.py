"""LightningDataModules and dataset readers, one file per family."""

from genlab.data.base import FileImages, ImageDataModule, InMemoryImages, TensorSplit

__all__ = ["FileImages", "ImageDataModule", "InMemoryImages", "TensorSplit"]
