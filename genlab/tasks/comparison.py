"""``experiment=model_comparison``: every arm trained at a matched budget, scored under one protocol, compared.

Each job of the sweep is one arm (``arm=<name>``, configs/arm/: a model with its own defaults) and one
seed. The job trains for the budget (``budget.images`` seen, or ``budget.minutes``), scores itself at
the end of training (``eval.n_at_end`` samples with the same features, split, seed and, for diffusion,
the same fast sampler ``eval.sample_options`` for every arm) and records its fit time (``timing.json``).
When the sweep ends, :class:`ModelComparison` loads every completed run, counts its trained
parameters, times sampling (``comparison.timing_n`` images with the scoring's options), draws one grid
of samples per arm with the same seed (class-ordered for conditional arms) and writes
``comparison.md``, ``comparison.csv`` and ``comparison.png`` into the sweep folder.

An arm that cannot take the data (a conditional model on unlabelled images, a DCGAN on a size it
cannot make) is skipped by its own job: the reason is printed and kept in its ``metrics.json``
(``"status": "skipped"``), and the comparison lists it instead of failing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import LightningModule

from genlab.api import Run
from genlab.errors import GenlabError, message_of
from genlab.imaging import save_grid
from genlab.io import write_json
from genlab.scoring.scorers import generation_options
from genlab.tables import job_order
from genlab.tasks.comparison_report import write_report

log = logging.getLogger("genlab")

# Scores copied from each job's metrics.json into the comparison (END_KEYS of genlab.scoring.training).
SCORE_KEYS = ("fid", "kid_mean", "precision", "recall", "class_coverage", "class_acc")


def arm_of(cfg: DictConfig) -> str | None:
    """The comparison arm this run is (``comparison.arm``), or None outside a model comparison."""
    arm = OmegaConf.select(cfg, "comparison.arm", default=None)
    return None if arm is None else str(arm)


def arm_model_or_skip(cfg: DictConfig, build: Callable[[DictConfig], LightningModule]) -> LightningModule | None:
    """``build(cfg)``; for an arm of a model comparison whose model cannot take the data, None instead of the
    error: the reason is printed and written to the run's metrics.json (``"status": "skipped"``)."""
    try:
        return build(cfg)
    except (GenlabError, InstantiationException) as err:
        cause = err if isinstance(err, GenlabError) else err.__cause__
        arm = arm_of(cfg)
        if arm is None or not isinstance(cause, GenlabError):
            raise
        reason = message_of(cause)
        print(f"genlab: arm {arm} skipped: {reason}", file=sys.stderr, flush=True)
        log.warning("arm %s skipped: %s", arm, reason)
        write_json(Path(cfg.paths.run_dir) / "metrics.json", {"status": "skipped", "arm": arm, "reason": reason})
        return None


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def job_record(job_dir: Path) -> dict[str, Any] | None:
    """A job's arm, seed, status, scores and timing (None for a folder that is not an arm's run)."""
    config_file = job_dir / ".hydra" / "config.yaml"
    if not config_file.is_file():
        return None
    config = yaml.safe_load(config_file.read_text())
    arm = (config.get("comparison") or {}).get("arm")
    if arm is None:
        return None
    metrics = _read_json(job_dir / "metrics.json")
    record: dict[str, Any] = {"arm": arm, "seed": config.get("seed"), "job": job_dir.name}
    record["status"] = metrics.get("status", "not finished")
    if record["status"] == "skipped":
        record["reason"] = metrics.get("reason", "")
    record.update({k: metrics[k] for k in SCORE_KEYS if isinstance(metrics.get(k), int | float)})
    if metrics.get("fid_sampler"):
        record["sampler"] = f"{metrics['fid_sampler']}-{metrics.get('fid_steps', metrics.get('fid_nfe'))}"
    timing = _read_json(job_dir / "timing.json")
    record.update({k: timing[k] for k in ("fit_seconds", "fit_cpu_seconds", "images_seen") if k in timing})
    return record


def measure(job_dir: Path, record: dict[str, Any], settings: DictConfig, grids_dir: Path) -> dict[str, Any]:
    """Trained parameters, sampling seconds per 1,000 images and the arm's sample grid (same seed for every arm)."""
    run = Run.load(job_dir, "last", str(settings.get("device", "auto")))
    model = run.model
    options = generation_options(model, run.config.eval.get("sample_options") or {}, {})
    per_class = int(settings.grid_per_class)
    classes = int(run.config.data.num_classes) or per_class
    seed = int(settings.get("seed", 0))
    grid = run.sample(per_class * classes, seed, **options)  # conditional: one row per class
    path = save_grid(grid.images, grids_dir / f"{record['arm']}_seed{record['seed']}" / "grid.png", per_class)
    timing_n = int(settings.timing_n)
    started = time.perf_counter()
    run.sample(timing_n, seed, **options)
    seconds = time.perf_counter() - started
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "params": params,
        "sample_s_per_1000": 1000 * seconds / timing_n,
        "grid": str(path),
        "device": str(run.device),
    }


def compare_sweep(sweep_dir: Path, config: DictConfig) -> Path | None:
    """Collect, measure and report every arm's run of ``sweep_dir`` (``config``: the sweep's composed config, whose
    ``comparison`` node holds the settings); return comparison.md, None when the folder holds no arm's run."""
    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir()), key=lambda p: job_order(p.name))
    records = [(job, record) for job in jobs if (record := job_record(job)) is not None]
    if not records:
        return None
    for job, record in records:
        if record["status"] != "completed":
            continue
        try:
            record.update(measure(job, record, config.comparison, sweep_dir / "grids"))
        except GenlabError as err:
            record["status"] = f"not measured: {message_of(err)}"
    devices = sorted({record["device"] for _, record in records if "device" in record})
    return write_report(sweep_dir, [record for _, record in records], protocol(config, devices))


def protocol(config: DictConfig, devices: list[str]) -> dict[str, Any]:
    """What every arm shared: data, budget, scoring (n, features, split, diffusion sampler), timing threads."""
    budget = config.get("budget") or {}
    minutes = budget.get("minutes")
    return {
        "data": f"{config.data.name} ({config.data.channels}×{config.data.image_size}×{config.data.image_size})",
        "budget": f"{minutes} minutes of wall clock" if minutes is not None else f"{budget.get('images')} images seen",
        "batch size": config.data.batch_size,
        "scored": f"{config.eval.n_at_end} samples against the {config.eval.split} split, "
        f"{config.eval.features or config.data.fid_features} features, seed = the run's seed",
        "diffusion sampler": ", ".join(f"{k}={v}" for k, v in (config.eval.sample_options or {}).items()),
        "sampling time": f"{config.comparison.timing_n} images, {torch.get_num_threads()} torch threads, "
        f"on {', '.join(devices) or config.comparison.device}",
    }


class ModelComparison(Callback):
    """Hydra callback of ``experiment=model_comparison``: writes the comparison when the sweep ends.

    Its settings are the ``comparison`` node of the experiment: ``grid_per_class`` (samples per class
    row of each arm's grid), ``timing_n`` (images sampled to time sampling), ``seed``, ``device``.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        jobs = OmegaConf.select(config, "hydra.launcher.n_jobs", default=None)
        parallel = isinstance(jobs, int) and jobs != 1 and (jobs > 1 or (os.cpu_count() or 1) > 1)
        if OmegaConf.select(config, "budget.minutes", default=None) is not None and parallel:
            log.warning(
                "budget.minutes with %s parallel jobs: arms that share the machine get different compute in the "
                "same minutes; use budget.images (the default) or a serial launcher for a matched budget.",
                jobs,
            )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        path = compare_sweep(sweep_dir, config)
        if path is not None:
            print(f"\nwritten to {path}", flush=True)
