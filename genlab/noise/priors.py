"""Latent noise distributions. Each draws from an explicit ``torch.Generator`` so that a seed
gives identical noise, and knows how to interpolate between two of its samples."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from genlab.errors import GenlabError


class NoiseDist:
    """Base class of latent priors."""

    name = "noise"

    def sample(
        self,
        shape: Sequence[int],
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Draw a float32 tensor of ``shape``; noise is drawn on the generator's device."""
        raise NotImplementedError

    def interpolate(self, start: Tensor, end: Tensor, steps: int) -> Tensor:
        """``steps`` points from ``start`` to ``end`` (each (D,)): linear by default."""
        weights = torch.linspace(0, 1, steps, device=start.device).unsqueeze(1)
        return (1 - weights) * start + weights * end

    def truncate(self, threshold: float) -> NoiseDist:
        """This prior restricted to [-threshold, threshold] per coordinate (the "truncation trick")."""
        raise NotImplementedError

    @staticmethod
    def _device(generator: torch.Generator | None, device: torch.device | str | None) -> torch.device:
        if generator is not None:
            return generator.device
        return torch.device(device or "cpu")


def _to(x: Tensor, device: torch.device | str | None) -> Tensor:
    return x if device is None else x.to(device)


class GaussianNoise(NoiseDist):
    """N(0, I). Interpolation is spherical (slerp), which keeps points at a typical norm."""

    name = "gaussian"

    def sample(self, shape, generator=None, device=None) -> Tensor:
        z = torch.randn(*shape, generator=generator, device=self._device(generator, device))
        return _to(z, device)

    def interpolate(self, start: Tensor, end: Tensor, steps: int) -> Tensor:
        weights = torch.linspace(0, 1, steps, device=start.device).unsqueeze(1)
        cos = torch.dot(start, end) / (start.norm() * end.norm()).clamp_min(1e-12)
        omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
        if omega.abs() < 1e-4:
            return super().interpolate(start, end, steps)
        return (torch.sin((1 - weights) * omega) * start + torch.sin(weights * omega) * end) / torch.sin(omega)

    def truncate(self, threshold: float) -> NoiseDist:
        return TruncatedNormalNoise(threshold)


class UniformNoise(NoiseDist):
    """U(low, high)^K, interpolated linearly (a straight line stays inside the box)."""

    name = "uniform"

    def __init__(self, low: float = -1.0, high: float = 1.0) -> None:
        if not low < high:
            raise GenlabError(f"noise_dist.low={low} must be smaller than noise_dist.high={high}.")
        self.low, self.high = float(low), float(high)

    def sample(self, shape, generator=None, device=None) -> Tensor:
        u = torch.rand(*shape, generator=generator, device=self._device(generator, device))
        return _to(u * (self.high - self.low) + self.low, device)

    def truncate(self, threshold: float) -> NoiseDist:
        low, high = max(self.low, -threshold), min(self.high, threshold)
        if not low < high:
            raise GenlabError(
                f"truncation={threshold} leaves nothing of the uniform prior U({self.low}, {self.high}): "
                "use a larger truncation."
            )
        return UniformNoise(low, high)


class TruncatedNormalNoise(NoiseDist):
    """N(0, I) truncated to [-threshold, threshold] per coordinate (the "truncation trick")."""

    name = "truncated_normal"

    def __init__(self, threshold: float = 2.0) -> None:
        if not threshold > 0:
            raise GenlabError(f"truncation threshold={threshold} must be > 0.")
        self.threshold = float(threshold)

    def sample(self, shape, generator=None, device=None) -> Tensor:
        # Inverse-CDF sampling: exact, and deterministic for a given generator.
        u = torch.rand(*shape, generator=generator, device=self._device(generator, device), dtype=torch.float64)
        cdf_hi = 0.5 * (1 + math.erf(self.threshold / math.sqrt(2)))
        p = (1 - cdf_hi) + u * (2 * cdf_hi - 1)
        z = math.sqrt(2) * torch.erfinv(2 * p - 1)
        return _to(z.clamp_(-self.threshold, self.threshold).float(), device)

    def truncate(self, threshold: float) -> NoiseDist:
        return TruncatedNormalNoise(min(threshold, self.threshold))
