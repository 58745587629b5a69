"""An honest stand-in generator for evaluation tests (the real GANs/DDPM live on other branches).

``mode=data`` replays images of the digits training split (the ideal generator of that split:
FID against the test split is small), ``mode=noise`` emits uniform noise (FID is large).
Conditional replay returns images of the requested classes. Its one parameter, a gain applied to
the images, is trained toward 1 by a real optimisation step, so it runs through ``genlab train``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.data.digits import DigitsDataModule
from genlab.models.base import GenlabModule


class ReplayGenerator(GenlabModule):
    """Generates by drawing real digits images (or noise); see the module docstring.

    Args:
        channels, image_size: image shape (must be digits' channels; any size).
        num_classes: classes of the dataset.
        mode: ``data`` (replay training images) or ``noise`` (uniform in [-1, 1]).
        conditional: honour requested labels (``num_classes`` > 0 then).
        lr: SGD learning rate of the gain.
    """

    def __init__(
        self,
        channels: int,
        image_size: int,
        num_classes: int,
        mode: str = "data",
        conditional: bool = False,
        lr: float = 0.1,
        **meta,
    ) -> None:
        super().__init__(**meta)
        self.mode = mode
        self.num_classes = num_classes if conditional else 0
        self.lr = lr
        self.image_shape = (channels, image_size, image_size)
        self.gain = nn.Parameter(torch.tensor(1.0))
        train = DigitsDataModule(name="digits", channels=channels, image_size=image_size, num_classes=10).load_splits()
        self.register_buffer("images", train["train"].images, persistent=False)
        self.register_buffer("labels", train["train"].labels, persistent=False)

    def generation_options(self) -> dict[str, str]:
        return {}

    def generate(
        self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None, **options
    ) -> Tensor:
        device = self.gain.device
        if self.mode == "noise":
            return torch.rand(n, *self.image_shape, generator=generator, device=device) * 2 - 1
        if labels is None:
            index = torch.randint(len(self.labels), (n,), generator=generator, device=device)
        else:
            order = torch.argsort(self.labels)
            counts = torch.bincount(self.labels, minlength=self.num_classes)
            starts = torch.cumsum(counts, 0) - counts
            offset = (torch.rand(n, generator=generator, device=device) * counts[labels]).long()
            index = order[starts[labels] + offset]
        images = self.images[index].float() / 127.5 - 1
        return (images * self.gain.detach()).clamp(-1, 1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, _ = batch
        loss = F.mse_loss(images * self.gain, images)
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)
