"""The denoising autoencoder of the course as a LightningModule (capability Restores).

``noise_factor`` is the course's: the standard deviation of the Gaussian noise as a share of the
pixel range, i.e. of ``x + noise_factor·ε`` on [0, 1] images. genlab's images are in [-1, 1] (a range
twice as wide), so the same picture is ``x + 2·noise_factor·ε`` there: ``noise_factor=0.5`` here is the
course's ``noise_factor=0.5``. Unlike the course, the noisy image is not clipped (see
:func:`genlab.nets.autoencoder.add_noise`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.metrics.restoration import psnr
from genlab.models.adversarial import eval_mode
from genlab.models.base import GenlabModule, OptimizerFactory, check_finite, check_image_data, make_optimizer
from genlab.nets.autoencoder import add_noise

# The course's factors are on [0, 1] images; genlab's [-1, 1] images need twice the standard deviation.
RANGE_SCALE = 2.0
FACTOR_MEANING = "the noise's standard deviation as a share of the pixel range, the course's noise_factor"


def noise_factor_list(value: Any, option: str) -> list[float]:
    """``value`` (a number or a list of numbers) as floats ≥ 0, or a GenlabError naming ``option``."""
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    for v in values:
        number = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        if not number or v < 0:
            shown = f"{v:g}" if number else v
            raise GenlabError(f"{option}={shown} must be a number >= 0: it is {FACTOR_MEANING} (0.1-0.5 are typical).")
    if not values:
        raise GenlabError(f"{option} is empty: give a noise factor such as 0.3.")
    return [float(v) for v in values]


def noise_range(value: Any) -> tuple[float, float]:
    """``model.noise_factor``: one factor, or ``[lo, hi]`` (a factor drawn uniformly per image)."""
    values = noise_factor_list(value, "model.noise_factor")
    if len(values) > 2 or values[0] > values[-1]:
        raise GenlabError(
            f"model.noise_factor={value} must be one factor (e.g. 0.3) or a range [lo, hi] with lo <= hi "
            "(e.g. [0.1, 0.5]: a factor drawn uniformly per image)."
        )
    return values[0], values[-1]


class DenoisingAutoencoderModule(GenlabModule):
    """Trains ``net`` on pairs (x + noise_factor·ε, x) with MSE; restores noisy images (capability Restores).

    Logs ``train/loss`` (MSE on [-1, 1] pixels), ``val/loss`` and ``val/psnr_gain`` (dB of the denoised
    over the clipped noisy images), both on fixed noise drawn from the training range.

    Args:
        net: the denoiser (``DenoisingAutoencoder``), noisy image → clean image in [-1, 1].
        optimizer: a partial optimizer called with the parameters.
        channels, image_size: the images it restores.
        noise_factor: the course's factor (module docstring), or ``[lo, hi]`` drawn uniformly per image.
        eval_noise_factors: the levels shown in ``samples/denoise.png`` and scored by ``genlab eval``.
        **meta: the model config's ``name``, ``epochs``, ``monitor``.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: OptimizerFactory,
        channels: int,
        image_size: int,
        noise_factor: float | Sequence[float] = (0.1, 0.5),
        eval_noise_factors: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5),
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        self.noise_range = noise_range(noise_factor)
        self.noise_factors = tuple(noise_factor_list(eval_noise_factors, "model.eval_noise_factors"))
        self.net = net
        self.optimizer_factory = optimizer
        self.image_shape = (channels, image_size, image_size)

    def check_data(self, datamodule: Any) -> None:
        check_image_data(self.config_name, self.image_shape, 0, datamodule)

    # ----- capability Restores -------------------------------------------------------------------

    def restoration_options(self) -> Mapping[str, str]:
        return {
            "noise_factor": f"{FACTOR_MEANING}, or a list: the levels of split= images and of eval (default "
            f"{list(self.noise_factors)}); input= images are denoised as they are unless it is given"
        }

    def corrupt(self, images: Tensor, noise_factor: float | Tensor, generator: torch.Generator | None = None) -> Tensor:
        """``images`` (in [-1, 1]) + 2·noise_factor·ε: the course's corruption (one factor, or one per image)."""
        factor = torch.as_tensor(noise_factor, dtype=images.dtype, device=images.device)
        if bool((factor < 0).any()):
            noise_factor_list(factor.min().item(), "noise_factor")
        return add_noise(images, RANGE_SCALE * factor, generator)

    @torch.no_grad()
    def restore(self, images: Tensor) -> Tensor:
        """The denoised images in [-1, 1] (eval mode)."""
        with eval_mode(self.net) as net:
            return net(images.to(self.device))

    # ----- training ------------------------------------------------------------------------------

    def _factors(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        low, high = self.noise_range
        return low + (high - low) * torch.rand(n, device=device, generator=generator)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, _ = batch
        noisy = self.corrupt(images, self._factors(len(images), images.device))
        loss = F.mse_loss(self.net(noisy), images)
        check_finite(
            loss, "train/loss", self.global_step, self.current_epoch, "Try a lower learning rate (model.optimizer.lr)."
        )
        self.log_step({"train/loss": loss}, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, _ = batch
        generator = torch.Generator(images.device).manual_seed(batch_idx)
        noisy = self.corrupt(images, self._factors(len(images), images.device, generator), generator)
        denoised = self.net(noisy)
        self.log("val/loss", F.mse_loss(denoised, images), prog_bar=True)
        self.log("val/psnr_gain", (psnr(denoised, images) - psnr(noisy, images)).mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer_factory, self.net.parameters(), "optimizer")
