"""Batch samplers over real plus synthetic images (generative data augmentation)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Sampler


def synthetic_share(batch_size: int, ratio: float) -> int:
    """How many images of a training batch of ``batch_size`` are synthetic at ``ratio``."""
    return min(batch_size - 1, math.floor(batch_size * ratio + 0.5)) if ratio > 0 else 0


class MixedBatchSampler(Sampler[list[int]]):
    """Batches over real + synthetic images with a fixed synthetic share (``n_synthetic`` per batch).

    Indices ``< n_real`` are real, the rest synthetic. Each pool is walked in a fresh random order
    that continues across epochs, so every real image is used before any repeats.
    """

    def __init__(
        self, n_real: int, n_pool: int, batch_size: int, n_synthetic: int, num_batches: int, seed: int
    ) -> None:
        self.n_real, self.n_pool = n_real, n_pool
        self.batch_size, self.n_synthetic, self.num_batches = batch_size, n_synthetic, num_batches
        self.generator = torch.Generator().manual_seed(seed)
        self.streams = {"real": torch.empty(0, dtype=torch.long), "pool": torch.empty(0, dtype=torch.long)}

    def __len__(self) -> int:
        return self.num_batches

    def _take(self, stream: str, size: int, count: int) -> Tensor:
        while len(self.streams[stream]) < count:
            order = torch.randperm(size, generator=self.generator)
            self.streams[stream] = torch.cat([self.streams[stream], order])
        taken, self.streams[stream] = self.streams[stream][:count], self.streams[stream][count:]
        return taken

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.num_batches):
            real = self._take("real", self.n_real, self.batch_size - self.n_synthetic)
            pool = self._take("pool", self.n_pool, self.n_synthetic) + self.n_real
            yield torch.cat([real, pool]).tolist()
