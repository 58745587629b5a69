"""genlab: a config-driven experiment runner for image generative models and data augmentation."""

__version__ = "0.1.0"
