"""``genlab eval`` of a denoising autoencoder: PSNR/SSIM of noisy and denoised images per noise factor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genlab import progress
from genlab.capabilities import Restores
from genlab.metrics.restoration import RestorationScorer, resolve_restoration_metrics
from genlab.models.dae import noise_factor_list


def score_restoration(
    model: Restores,
    datamodule: Any,
    split: str,
    n: int,
    seed: int = 0,
    metrics: Sequence[str] | str | None = None,
    noise_factor: float | Sequence[float] | None = None,
) -> dict[str, Any]:
    """Scores of ``model`` on the first ``n`` images of ``split`` at each ``noise_factor`` (default: the model's)."""
    factors = model.noise_factors if noise_factor is None else noise_factor_list(noise_factor, "noise_factor")
    protocol = {"split": split, "data": str(datamodule.name), "data_fingerprint": datamodule.fingerprint(split)}
    scorer = RestorationScorer(factors, metrics=resolve_restoration_metrics(metrics), n=n, protocol=protocol)
    with progress.progress(len(factors) * n, f"restoring {n} images at {len(factors)} noise factors"):
        return scorer.score(model, datamodule.dataloader(split), seed)
