"""LightningDataModules and dataset readers, one file per family."""

from genlab.data.base import ImageDataModule
from genlab.data.datasets import FileImages, InMemoryImages, TensorSplit

__all__ = ["FileImages", "ImageDataModule", "InMemoryImages", "TensorSplit"]
