"""Augmentation pipelines (torchvision.transforms.v2) and custom v2-style transforms."""

from genlab.augment.pipeline import Augmentation
from genlab.augment.transforms import Cutout, SaltAndPepperNoise

__all__ = ["Augmentation", "Cutout", "SaltAndPepperNoise"]
