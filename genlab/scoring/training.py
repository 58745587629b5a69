"""What ``genlab train`` does with the ``eval`` settings: scores at the end and ``val/fid`` during training."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning import Callback, LightningDataModule, LightningModule

from genlab import progress
from genlab.callbacks.fid import PeriodicFID
from genlab.capabilities import Generates, Translates, generates_conditionally
from genlab.errors import GenlabError
from genlab.metrics.evaluate import default_metrics
from genlab.scoring.scorers import (
    generation_options,
    generation_record,
    generative_scorer,
    score_translations,
    translation_scorer,
)

log = logging.getLogger("genlab")

# Scores copied into the run's metrics.json (plus how they were made: fid_features, fid_n, fid_sampler, ...).
END_KEYS = (
    "fid",
    "kid_mean",
    "kid_std",
    "precision",
    "recall",
    "class_acc",
    "class_coverage",
    "class_kl",
    "memorisation_share",
    "memorisation_baseline",
    "memorisation_share_pixels",
    "memorisation_baseline_pixels",
    "fid_BtoA",
)


def _scorer(cfg: DictConfig, model: Generates, datamodule: Any, split: str, n: int, memorisation: bool = True):
    metrics = default_metrics(generates_conditionally(model), int(cfg.data.num_classes))
    return generative_scorer(
        cfg.data,
        cfg.eval,
        split=split,
        features=cfg.eval.features,
        metrics=[m for m in metrics if memorisation or m != "memorisation"],
        n=n,
        cache_dir=cfg.paths.cache_dir,
        device=model.device,
        datamodule=datamodule,
    )


def fid_callbacks(cfg: DictConfig, model: LightningModule, datamodule: LightningDataModule) -> list[Callback]:
    """A :class:`PeriodicFID` when ``eval.every_n_epochs`` is set and the model generates images."""
    every = cfg.get("eval", {}).get("every_n_epochs")
    if not every:
        return []
    if not isinstance(model, Generates):
        log.warning("eval.every_n_epochs: model=%s logs no val/fid (it does not generate from noise).", cfg.model.name)
        return []
    scorer = _scorer(cfg, model, datamodule, "val", int(cfg.eval.n_during), memorisation=False)
    options = generation_options(model, cfg.eval.get("sample_options") or {}, {})
    return [PeriodicFID(scorer, int(every), cfg.seed, options)]


def end_of_training_scores(cfg: DictConfig, model: LightningModule, datamodule: LightningDataModule) -> dict[str, Any]:
    """FID, KID, precision/recall and class metrics of ``eval.n_at_end`` samples of a generative model
    (of a translation model: FID of its translations of the first ``eval.n_at_end`` pairs), with how they
    were made (features, n, sampler and NFE for diffusion models).

    User-fixable problems (no Inception weights offline, too few samples for FID) are logged as a
    warning and leave the scores out: a finished training run is never lost to its evaluation.
    """
    n = int(cfg.get("eval", {}).get("n_at_end") or 0)
    if n <= 0 or cfg.trainer.get("fast_dev_run") or not isinstance(model, Generates | Translates):
        return {}
    split = cfg.eval.split
    try:
        if isinstance(model, Translates):
            scorer = translation_scorer(
                cfg.data,
                cfg.eval,
                split=split,
                features=cfg.eval.features,
                metrics=["fid"],
                n=n,
                cache_dir=cfg.paths.cache_dir,
                device=model.device,
                datamodule=datamodule,
                translator=model,
            )
            model.eval()
            with progress.progress(scorer.n, f"scoring {scorer.n} translations"):
                metrics = score_translations(scorer, model, datamodule, split)
            record: dict[str, Any] = {}
        else:
            scorer = _scorer(cfg, model, datamodule, split, n)
            options = generation_options(model, cfg.eval.get("sample_options") or {}, {})
            record = generation_record(model, options)
            with progress.progress(n, f"scoring {n} samples"):
                metrics, _ = scorer.score(model, seed=int(cfg.seed), options=options)
    except GenlabError as err:
        log.warning("end-of-training FID skipped: %s", err)
        return {}
    out = {k: metrics[k] for k in END_KEYS if k in metrics}
    out.update({"fid_features": metrics["features"], "fid_feature_network": metrics["feature_network"]})
    out["fid_n"] = metrics["n"]
    if "sampler" in record:
        out.update(fid_sampler=record["sampler"], fid_nfe=record["nfe"])
        if "steps" in record["sampler_options"]:
            out["fid_steps"] = record["sampler_options"]["steps"]
    log.info("end of training (%d samples, %s features): %s", metrics["n"], metrics["features"], out)
    return out
