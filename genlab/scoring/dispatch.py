"""Score a trained model by what it can do: generators (FID/KID/precision-recall/class metrics of samples),
translators (L1/PSNR/SSIM/FID of translations), denoising autoencoders (PSNR/SSIM per noise factor) and
classifiers (accuracy). :meth:`genlab.api.Run.evaluate` calls it with the run's pieces."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from pytorch_lightning import LightningDataModule, LightningModule
from torch import Tensor

from genlab import progress
from genlab.capabilities import Classifies, Generates, Restores, Translates, generates_conditionally
from genlab.errors import GenlabError
from genlab.metrics.evaluate import classifier_report, resolve_metrics
from genlab.metrics.translation import resolve_translation_metrics
from genlab.scoring.restoration import score_restoration
from genlab.scoring.scorers import (
    generation_options,
    generation_record,
    generative_scorer,
    score_translations,
    translation_scorer,
)


def score_model(
    model: LightningModule,
    name: str,
    datamodule: LightningDataModule,
    data_cfg: DictConfig,
    settings: DictConfig,
    *,
    n: int,
    features: str | None,
    split: str,
    metrics: Sequence[str] | str | None,
    seed: int,
    cache_dir: str | Path,
    device: torch.device,
    options: dict[str, Any],
) -> tuple[dict[str, Any], Tensor | None, Tensor | None]:
    """(metrics, a grid of samples or None, the memorisation check's nearest-neighbour rows or None).
    ``options`` were checked against the model's own by the caller; ``name`` is the model config's name."""
    common = {"split": split, "features": features, "n": n, "cache_dir": cache_dir, "device": device}
    if isinstance(model, Translates):
        wanted = resolve_translation_metrics(metrics)
        scorer = translation_scorer(
            data_cfg, settings, metrics=wanted, datamodule=datamodule, translator=model, **common
        )
        with progress.progress(scorer.n, f"scoring {scorer.n} translations"):
            result = score_translations(scorer, model, datamodule, split)
        return {**result, "seed": seed}, None, None
    if isinstance(model, Restores):
        return score_restoration(model, datamodule, split, n, seed, metrics, **options), None, None
    if isinstance(model, Generates):
        wanted = resolve_metrics(metrics, generates_conditionally(model), int(data_cfg.num_classes))
        chosen = generation_options(model, settings.get("sample_options") or {}, options)
        record = generation_record(model, chosen)  # refuses bad sampler options before any scoring work
        scorer = generative_scorer(data_cfg, settings, metrics=wanted, datamodule=datamodule, **common)
        with progress.progress(n, f"scoring {n} samples"):
            result, grid = scorer.score(model, seed=seed, options=chosen)
        return {**result, **record}, grid, scorer.nearest
    if isinstance(model, Classifies) and int(data_cfg.num_classes) > 0:
        if metrics is not None or options:
            raise GenlabError(
                f"metrics= and sampling options apply to generative models; model={name} is a classifier."
            )
        report = classifier_report(
            model.classify, datamodule.dataloader(split), split, int(data_cfg.num_classes), device
        )
        return {**report, "seed": seed}, None, None
    raise GenlabError(f"genlab does not know how to score model={name}.")
