"""The history of generated images that CycleGAN's discriminators learn from (Shrivastava et al. 2017).

Zhu et al. (2017) update each discriminator with a buffer of the 50 most recent fakes instead
of only the latest batch, which reduces model oscillation. As in the official ``ImagePool``:

- while the pool holds fewer than ``size`` images, each new fake is stored and returned;
- once full, each new fake is, with probability 1/2, returned as is; otherwise a uniformly chosen
  stored image is returned instead and the new fake takes its place;
- ``size = 0`` turns the pool off: ``query`` returns its input.

Draws come from an explicit ``torch.Generator`` (deterministic under a seed); the stored images
are part of :meth:`ImagePool.state_dict`, so a resumed run continues with its pool.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from genlab.errors import GenlabError

SWAP_PROBABILITY = 0.5


class ImagePool:
    """A buffer of up to ``size`` past fakes (detached), queried once per discriminator update.

    Args:
        size: images kept (CycleGAN: 50); 0 returns every query unchanged.
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise GenlabError(f"image pool size={size} must be >= 0 (0 turns the pool off; CycleGAN uses 50).")
        self.size = size
        self.images: Tensor | None = None  # (n, C, H, W) with n <= size, once something is stored

    def __len__(self) -> int:
        return 0 if self.images is None else len(self.images)

    def query(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The batch to show the discriminator for the new fakes ``images`` (N, C, H, W); detached.

        ``generator`` (a CPU generator) drives the coin flips and the choice of stored images;
        None uses torch's global generator.
        """
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is not None and self.images.device != images.device:
            self.images = self.images.to(images.device)
        returned = images.clone()
        swap = torch.rand(len(images), generator=generator) < SWAP_PROBABILITY
        slots = torch.randint(self.size, (len(images),), generator=generator)
        for i, image in enumerate(images):
            if len(self) < self.size:
                stored = image.unsqueeze(0).clone()
                self.images = stored if self.images is None else torch.cat([self.images, stored])
            elif swap[i]:
                slot = int(slots[i])
                returned[i] = self.images[slot]
                self.images[slot] = image
        return returned

    def state_dict(self) -> dict[str, Any]:
        """The size and the stored images (None while empty)."""
        return {"size": self.size, "images": None if self.images is None else self.images.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a pool saved by :meth:`state_dict`; its size must match this pool's."""
        if state["size"] != self.size:
            raise GenlabError(
                f"the checkpoint's image pool holds up to {state['size']} images but this model's pool "
                f"{self.size}: resume with the pool size the run was trained with."
            )
        images = state["images"]
        self.images = None if images is None else images.clone()
