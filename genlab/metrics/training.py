"""What ``genlab train`` does with the ``eval`` settings: FID at the end and ``val/fid`` during training."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning import Callback, LightningDataModule, LightningModule

from genlab.callbacks.fid import PeriodicFID
from genlab.errors import GenlabError
from genlab.metrics.evaluate import GenerativeScorer, default_metrics
from genlab.metrics.translation import TranslationScorer, translates
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


def _translation_scores(cfg: DictConfig, model: LightningModule, datamodule: Any, n: int) -> dict[str, Any]:
    """FID of G(A) against B on the first ``n`` pairs of ``eval.split`` (see :class:`TranslationScorer`)."""
    split = cfg.eval.split
    scorer = TranslationScorer(
        cfg.data,
        cfg.eval,
        split=split,
        features=cfg.eval.features,
        metrics=["fid"],
        n=n,
        split_size=len(datamodule.dataset(split)),
        cache_dir=cfg.paths.cache_dir,
        device=model.device,
    )
    was_training = model.training
    model.eval()
    try:
        return scorer.score(model.translate, datamodule.dataloader(split))
    finally:
        model.train(was_training)


def sample_options(cfg: DictConfig, model: GenerativeModule) -> dict[str, Any]:
    """``eval.sample_options`` that this model accepts (e.g. ``sampler``/``steps`` for diffusion)."""
    wanted = {k: v for k, v in (cfg.eval.get("sample_options") or {}).items() if v is not None}
    return {k: v for k, v in wanted.items() if k in model.sample_options}


def fid_callbacks(cfg: DictConfig, model: LightningModule, datamodule: LightningDataModule) -> list[Callback]:
    """A :class:`PeriodicFID` when ``eval.every_n_epochs`` is set and the model generates images."""
    every = cfg.get("eval", {}).get("every_n_epochs")
    if not every or not isinstance(model, GenerativeModule):
        return []
    if translates(model):
        log.warning("eval.every_n_epochs: %s logs val/l1, val/psnr and val/ssim, no val/fid.", type(model).__name__)
        return []
    scorer = _scorer(cfg, model, datamodule, "val", int(cfg.eval.n_during))
    return [PeriodicFID(scorer, int(every), cfg.seed, sample_options(cfg, model))]


def end_of_training_scores(cfg: DictConfig, model: LightningModule, datamodule: LightningDataModule) -> dict[str, Any]:
    """FID, KID, precision/recall and class metrics of ``eval.n_at_end`` samples of a generative model
    (of a translation model: FID of its translations of the first ``eval.n_at_end`` pairs).

    User-fixable problems (no Inception weights offline, too few samples for FID) are logged as a
    warning and leave the scores out: a finished training run is never lost to its evaluation.
    """
    n = int(cfg.get("eval", {}).get("n_at_end") or 0)
    if n <= 0 or not isinstance(model, GenerativeModule) or cfg.trainer.get("fast_dev_run"):
        return {}
    try:
        if translates(model):
            metrics = _translation_scores(cfg, model, datamodule, n)
        else:
            scorer = _scorer(cfg, model, datamodule, cfg.eval.split, n)
            metrics, _ = scorer.score(model, seed=int(cfg.seed), options=sample_options(cfg, model))
    except GenlabError as err:
        log.warning("end-of-training FID skipped: %s", err)
        return {}
    out = {k: metrics[k] for k in END_KEYS if k in metrics}
    n = metrics["n"]
    out.update({"fid_features": metrics["features"], "fid_feature_network": metrics["feature_network"], "fid_n": n})
    log.info("end of training (%d samples, %s features): %s", n, metrics["features"], out)
    return out
