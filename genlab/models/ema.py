"""Exponential moving average of a network's weights, on ``torch.optim.swa_utils.AveragedModel``.

The average covers the parameters and the buffers (``use_buffers=True``: BatchNorm's running
statistics are averaged with the weights they belong to). Its decay warms up as TensorFlow's
``ExponentialMovingAverage`` does, d_n = min(decay, (1 + n) / (10 + n)) after n updates, so a short
run's average is not dominated by the random initial weights (a fixed 0.999 would keep a third of a
1,000-step run's average at its initialisation).

The decay is either per update (``decay``) or keyed on the images seen (``half_life_images``, as EDM's
EMA half-life): an update after a batch of B images uses d = 0.5^(B / half_life_images), so the
average spans the same number of images whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from genlab.errors import GenlabError


def warmup_decay(decay: float, updates: int) -> float:
    """The decay applied at update number ``updates`` (1-based)."""
    return min(decay, (1 + updates) / (10 + updates))


def warmup_ema_fn(decay: Callable[[], float]) -> Callable[[list[Tensor], list[Tensor], Tensor], None]:
    """A ``multi_avg_fn`` for AveragedModel: ema ← d·ema + (1 − d)·θ with the warmed-up ``decay()``;
    integer buffers are copied."""

    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        weight = 1.0 - warmup_decay(decay(), int(num_averaged))
        for avg, cur in zip(averaged, current, strict=True):
            if avg.is_floating_point():
                avg.lerp_(cur, weight)
            else:
                avg.copy_(cur)

    return update


class EMA(AveragedModel):
    """The averaged copy of ``network`` (``ema.module``), updated by :meth:`update` after each optimizer step.

    Args:
        network: the trained network (copied on construction).
        decay: the final decay per update (e.g. 0.999), in (0, 1).
        half_life_images: instead of ``decay``, the number of images after which an old weight counts half.
    """

    def __init__(self, network: nn.Module, decay: float | None = None, half_life_images: int | None = None) -> None:
        if (decay is None) == (half_life_images is None):
            raise GenlabError("an EMA takes one of model.ema_decay and model.ema_half_life_images (the other null).")
        if decay is not None and (isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 < decay < 1):
            raise GenlabError(f"model.ema_decay={decay} must be in (0, 1), or null to turn the EMA off.")
        if half_life_images is not None and (not isinstance(half_life_images, int) or half_life_images < 1):
            raise GenlabError(f"model.ema_half_life_images={half_life_images} must be an integer ≥ 1.")
        self._current = float(decay) if decay is not None else 0.0
        super().__init__(network, multi_avg_fn=warmup_ema_fn(lambda: self._current), use_buffers=True)
        self.decay = decay
        self.half_life_images = half_life_images
        self.requires_grad_(False)

    def update(self, network: nn.Module, images: int | None = None) -> None:
        """Average ``network``'s current weights and buffers in, after a batch of ``images`` images."""
        if self.half_life_images is not None:
            if images is None:
                raise GenlabError("an EMA keyed on images seen needs the batch size of each update.")
            self._current = 0.5 ** (images / self.half_life_images)
        self.update_parameters(network)

    def train(self, mode: bool = True) -> EMA:
        """Always in eval mode: the average is only used for sampling."""
        return super().train(False)


def make_ema(network: nn.Module, decay: float | None, half_life_images: int | None = None) -> EMA | None:
    """The EMA a model config asks for: keyed on images seen when ``half_life_images`` is set (``decay`` is
    then ignored), per update with ``decay``, none when both are null."""
    if half_life_images is not None:
        return EMA(network, half_life_images=half_life_images)
    return EMA(network, decay) if decay is not None else None


def sampling_choice(live: nn.Module, average: EMA | None, ema: bool | None) -> nn.Module:
    """The network that samples: the average when there is one, the live network with ``ema=False``."""
    if ema is not None and not isinstance(ema, bool):
        raise GenlabError(f"ema={ema} must be true or false.")
    return average.module if average is not None and ema is not False else live


def migrate_ema_state(state_dict: MutableMapping[str, Any], prefix: str, updates: int) -> None:
    """Rename a pre-AveragedModel EMA (``<prefix>.<key>``) to ``<prefix>.module.<key>`` in place.

    Checkpoints written before genlab 0.2 stored the average as a plain copy of the network; their
    number of updates (``updates``) becomes ``<prefix>.n_averaged``.
    """
    old = [key for key in state_dict if key.startswith(f"{prefix}.") and not key.startswith(f"{prefix}.module.")]
    if not old or f"{prefix}.n_averaged" in state_dict:
        return
    for key in old:
        state_dict[f"{prefix}.module.{key[len(prefix) + 1 :]}"] = state_dict.pop(key)
    state_dict[f"{prefix}.n_averaged"] = torch.tensor(updates, dtype=torch.long)
