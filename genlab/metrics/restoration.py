"""Scores of a denoising model (:class:`~genlab.capabilities.Restores`): PSNR and SSIM against noise level.

For each noise factor, the first ``n`` images of a split are corrupted as the model was trained
(``model.corrupt``) and restored (``model.restore``); PSNR and SSIM of the noisy and of the restored
images against the clean ones are reported side by side. Both are computed on [0, 1] pixels after
clipping to that range (``to_unit_range``), as a saved image holds them: clipping alone already
removes part of the noise, so the noisy baseline is the stronger one. PSNR is averaged per image.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from genlab import progress
from genlab.capabilities import Restores
from genlab.errors import GenlabError
from genlab.imaging import to_unit_range

RESTORATION_METRICS = ("psnr", "ssim")


def psnr(images: Tensor, reference: Tensor) -> Tensor:
    """PSNR in dB per image (N,) of [-1, 1] images, on their [0, 1] clipped values (peak 1)."""
    mse = (to_unit_range(images) - to_unit_range(reference)).square().flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def ssim(images: Tensor, reference: Tensor) -> Tensor:
    """SSIM per image (N,) of [-1, 1] images, on their [0, 1] clipped values (torchmetrics' Gaussian 11×11 window)."""
    return structural_similarity_index_measure(
        to_unit_range(images), to_unit_range(reference), data_range=1.0, reduction="none"
    )


def resolve_restoration_metrics(requested: Sequence[str] | str | None) -> list[str]:
    """``metrics=`` of a denoising run: a subset of psnr, ssim (default: both)."""
    if requested is None:
        return list(RESTORATION_METRICS)
    chosen = [requested] if isinstance(requested, str) else [str(m) for m in requested]
    for name in chosen:
        if name not in RESTORATION_METRICS:
            raise GenlabError(f"metrics={name} is not a metric of a denoising model: choose from psnr, ssim.")
    return chosen


class RestorationScorer:
    """PSNR/SSIM of noisy and restored images at each noise factor (see the module docstring).

    Args:
        noise_factors: the levels to score.
        metrics: names from :data:`RESTORATION_METRICS`.
        n: images of the split to use (at most its size).
        protocol: what the scores are computed with (split, data, fingerprint), written beside them.
    """

    def __init__(self, noise_factors: Sequence[float], *, metrics: Sequence[str], n: int, protocol: dict[str, Any]):
        self.noise_factors = [float(f) for f in noise_factors]
        self.metrics = list(metrics)
        self.n = n
        self.protocol = dict(protocol)

    @torch.no_grad()
    def score(self, model: Restores, batches: Iterable[tuple[Tensor, Tensor]], seed: int = 0) -> dict[str, Any]:
        """The scores: lists aligned with ``noise_factors``, the smallest PSNR gain, and how they were made."""
        started = time.perf_counter()
        device = model.device
        generator = torch.Generator(device).manual_seed(seed)
        sums = {
            f"{m}_{kind}": torch.zeros(len(self.noise_factors)) for m in self.metrics for kind in ("noisy", "denoised")
        }
        seen = 0
        for images, _ in batches:
            images = images[: self.n - seen].to(device)
            if not len(images):
                break
            for k, factor in enumerate(self.noise_factors):
                noisy = model.corrupt(images, factor, generator)
                restored = model.restore(noisy)
                for kind, output in (("noisy", noisy), ("denoised", restored)):
                    if "psnr" in self.metrics:
                        sums[f"psnr_{kind}"][k] += psnr(output, images).sum().cpu()
                    if "ssim" in self.metrics:
                        sums[f"ssim_{kind}"][k] += ssim(output, images).sum().cpu()
                progress.advance(len(images))
            seen += len(images)
        if seen == 0:
            raise GenlabError("there are no images to score: the split is empty.")
        out: dict[str, Any] = {"noise_factors": self.noise_factors}
        out.update({key: [round(float(v) / seen, 4) for v in total] for key, total in sums.items()})
        if "psnr" in self.metrics:
            gains = [d - n for d, n in zip(out["psnr_denoised"], out["psnr_noisy"], strict=True)]
            out["psnr_gain_min"] = round(min(gains), 4)
        out.update({"n": seen, **self.protocol, "seed": seed, "eval_seconds": round(time.perf_counter() - started, 2)})
        return out
