"""Exponential moving average of a network's weights, on ``torch.optim.swa_utils.AveragedModel``.

The average covers the parameters and the buffers (``use_buffers=True``: BatchNorm's running
statistics are averaged with the weights they belong to). Its decay warms up as TensorFlow's
``ExponentialMovingAverage`` does, d_n = min(decay, (1 + n) / (10 + n)) after n updates, so a short
run's average is not dominated by the random initial weights (a fixed 0.999 would keep a third of a
1,000-step run's average at its initialisation).
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


def warmup_ema_fn(decay: float) -> Callable[[list[Tensor], list[Tensor], Tensor], None]:
    """A ``multi_avg_fn`` for AveragedModel: ema ← d·ema + (1 − d)·θ; integer buffers are copied."""

    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor) -> None:
        weight = 1.0 - warmup_decay(decay, int(num_averaged))
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
        decay: the final decay (e.g. 0.999), in (0, 1).
    """

    def __init__(self, network: nn.Module, decay: float) -> None:
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0.0 < decay < 1.0:
            raise GenlabError(f"model.ema_decay={decay} must be in (0, 1), or null to turn the EMA off.")
        super().__init__(network, multi_avg_fn=warmup_ema_fn(float(decay)), use_buffers=True)
        self.decay = float(decay)
        self.requires_grad_(False)

    def update(self, network: nn.Module) -> None:
        """Average ``network``'s current weights and buffers in."""
        self.update_parameters(network)

    def train(self, mode: bool = True) -> EMA:
        """Always in eval mode: the average is only used for sampling."""
        return super().train(False)


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
