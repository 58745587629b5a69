"""ADA's adaptive augmentation probability (Karras et al., 2020, "Training GANs with limited data").

The overfitting heuristic r_t = E[sign(D(x_real))] is the mean sign of the discriminator's real/fake
logits on real images: near 0 while D generalises, near 1 once it memorises the training set. Every
``interval`` discriminator updates, p moves by ``sign(r_t − target) · images / speed_images``
(``images`` = real images seen in that interval, batch·interval) and is clamped to [0, 1].

``speed_images`` is ADA's adjustment speed: the number of real images over which p can climb from
0 to 1 when r_t stays above target. ADA uses 500k images (``ada_kimg=500``) in runs of ~25M images,
i.e. ~2 % of a run. genlab's runs are far shorter (e.g. 2,000 steps × 64 = 128k images, over which
500k would let p reach only 0.26), so scale it to the run: ``speed_images ≈ 0.02–0.1 × (real images
seen by D in the run)``. Each adjustment is ``batch·interval / speed_images``; keep it ≤ ~0.05 or p
oscillates.

r_t is defined for one real/fake logit per image or per patch (BCE, hinge, LSGAN outputs); a
WGAN critic's sign has no fixed meaning and a K+1 head gives no single logit (the caller refuses those).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genlab.errors import GenlabError

OPTION = "model.ada"


class AdaptiveAugmentProbability:
    """Tracks r_t and adjusts the augmentation probability p.

    Args:
        target: the r_t the controller steers towards (ADA: 0.6), in (−1, 1).
        speed_images: real images over which p can move by 1 (ADA: 500k; see the module doc).
        interval: discriminator updates between adjustments (ADA: 4).
        p_init: starting probability, in [0, 1].
    """

    def __init__(
        self, target: float = 0.6, speed_images: int = 500_000, interval: int = 4, p_init: float = 0.0
    ) -> None:
        if not -1.0 < target < 1.0:
            raise GenlabError(
                f"{OPTION}_target={target} is out of range: r_t lies in [-1, 1], so it must be in (-1, 1)."
            )
        if speed_images <= 0:
            raise GenlabError(f"{OPTION}_speed_images={speed_images} must be > 0 (ADA uses 500000, scaled per run).")
        if interval < 1:
            raise GenlabError(f"{OPTION}_interval={interval} must be >= 1 discriminator update (ADA uses 4).")
        if not 0.0 <= p_init <= 1.0:
            raise GenlabError(f"{OPTION}_p_init={p_init} is out of range: a probability must lie in [0, 1].")
        self.target, self.speed_images, self.interval = float(target), int(speed_images), int(interval)
        self.p = float(p_init)
        self.r_t: float | None = None  # r_t of the last completed interval
        self._reset()

    def _reset(self) -> None:
        self._sign_sum: Tensor | float = 0.0  # kept on D's device: one sync per interval, not per update
        self._count, self._images, self._updates = 0, 0, 0

    def update(self, real_logits: Tensor) -> float:
        """Record D's logits on one batch of real images (N, ...) and return p (adjusted every ``interval`` calls)."""
        logits = real_logits.detach()
        self._sign_sum = self._sign_sum + torch.sign(logits).sum()
        self._count += logits.numel()
        self._images += logits.shape[0]
        self._updates += 1
        if self._updates == self.interval:
            self.r_t = float(self._sign_sum) / self._count
            direction = (self.r_t > self.target) - (self.r_t < self.target)
            self.p = min(max(self.p + direction * self._images / self.speed_images, 0.0), 1.0)
            self._reset()
        return self.p

    def state_dict(self) -> dict[str, Any]:
        """p, the last r_t and the partial accumulators (a resumed run continues mid-interval)."""
        return {
            "p": self.p,
            "r_t": self.r_t,
            "sign_sum": float(self._sign_sum),
            "count": self._count,
            "images": self._images,
            "updates": self._updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p, self.r_t = float(state["p"]), state["r_t"]
        self._sign_sum, self._count = float(state["sign_sum"]), int(state["count"])
        self._images, self._updates = int(state["images"]), int(state["updates"])
