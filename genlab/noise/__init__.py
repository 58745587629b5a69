"""Latent priors of the generators: ``prior.sample(shape, generator=, device=)``."""

from genlab.noise.priors import GaussianNoise, NoiseDist, TruncatedNormalNoise, UniformNoise

__all__ = ["GaussianNoise", "NoiseDist", "TruncatedNormalNoise", "UniformNoise"]
