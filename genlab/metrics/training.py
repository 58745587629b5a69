"""What ``genlab train`` does with the ``eval`` settings: FID at the end and ``val/fid`` during training."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning import Callback, LightningDataModule, LightningModule

from genlab.callbacks.fid import PeriodicFID
from genlab.errors import GenlabError
from genlab.metrics.evaluate import GenerativeScorer, default_metrics
from genlab.models.base import GenerativeModule

log = logging.getLogger("genlab")

# Scores copied into the run's metrics.json (plus fid_features and fid_n).
END_KEYS = ("fid", "kid_mean", "kid_std", "precision", "recall", "class_acc", "class_coverage", "class_kl")


def _scorer(cfg: DictConfig, model: GenerativeModule, datamodule: Any, split: str, n: int) -> GenerativeScorer:
    metrics = default_metrics(model.conditional, int(cfg.data.num_classes))
    return GenerativeScorer(
        cfg.data,
        cfg.eval,
        split=split,
        features=cfg.eval.features,
        metrics=metrics,
        n=n,
        cache_dir=cfg.paths.cache_dir,
        device=model.device,
        datamodule=datamodule,
    )


def sample_options(cfg: DictConfig, model: GenerativeModule) -> dict[str, Any]:
    """``eval.sample_options`` that this model accepts (e.g. ``sampler``/``steps`` for diffusion)."""
    wanted = {k: v for k, v in (cfg.eval.get("sample_options") or {}).items() if v is not None}
    return {k: v for k, v in wanted.items() if k in model.sample_options}


def fid_callbacks(cfg: DictConfig, model: LightningModule, datamodule: LightningDataModule) -> list[Callback]:
    """A :class:`PeriodicFID` when ``eval.every_n_epochs`` is set and the model generates images."""
    every = cfg.get("eval", {}).get("every_n_epochs")
    if not every or not isinstance(model, GenerativeModule):
        return []
    scorer = _scorer(cfg, model, datamodule, "val", int(cfg.eval.n_during))
    return [PeriodicFID(scorer, int(every), cfg.seed, sample_options(cfg, model))]


def end_of_training_scores(cfg: DictConfig, model: LightningModule, datamodule: LightningDataModule) -> dict[str, Any]:
    """FID, KID, precision/recall and class metrics of ``eval.n_at_end`` samples of a generative model.

    User-fixable problems (no Inception weights offline, too few samples for FID) are logged as a
    warning and leave the scores out: a finished training run is never lost to its evaluation.
    """
    n = int(cfg.get("eval", {}).get("n_at_end") or 0)
    if n <= 0 or not isinstance(model, GenerativeModule) or cfg.trainer.get("fast_dev_run"):
        return {}
    try:
        scorer = _scorer(cfg, model, datamodule, cfg.eval.split, n)
        metrics, _ = scorer.score(model, seed=int(cfg.seed), options=sample_options(cfg, model))
    except GenlabError as err:
        log.warning("end-of-training FID skipped: %s", err)
        return {}
    out = {k: metrics[k] for k in END_KEYS if k in metrics}
    out.update({"fid_features": metrics["features"], "fid_feature_network": metrics["feature_network"], "fid_n": n})
    log.info("end of training (%d samples, %s features): %s", n, metrics["features"], out)
    return out
