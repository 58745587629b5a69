"""Reverse-process samplers: one module per algorithm, each a frozen dataclass whose fields are its options.

A sampler is chosen by name (``sampler=ddim``) from the registry that its class joins when its module is
imported; ``configs/model/sampler/<name>.yaml`` names the module (``_target_``), so a new sampler is one module
here plus one yaml there. See :mod:`genlab.diffusion.samplers.base` for the interface.
"""

from genlab.diffusion.samplers.base import (
    EpsFn,
    Sampler,
    StepSampler,
    gaussian_noise,
    make_sampler,
    registered_samplers,
    sampler_class,
    sampler_option_help,
)

__all__ = [
    "EpsFn",
    "Sampler",
    "StepSampler",
    "gaussian_noise",
    "make_sampler",
    "registered_samplers",
    "sampler_class",
    "sampler_option_help",
]
