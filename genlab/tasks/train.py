"""``genlab train``: fit a model on a dataset and write a run folder."""

from __future__ import annotations

import logging
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning import seed_everything
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.model_helpers import is_overridden

from genlab.api import Run
from genlab.build import (
    compose_config,
    instantiate_callbacks,
    instantiate_datamodule,
    instantiate_loggers,
    instantiate_model,
    instantiate_trainer,
    migrate_config,
)
from genlab.callbacks.trackers import close_loggers, log_final_metrics
from genlab.capabilities import Classifies
from genlab.errors import GenlabError, Interrupted
from genlab.io import scalar_metrics, write_json
from genlab.scoring.training import end_of_training_scores, fid_callbacks
from genlab.tasks.common import CONFIG_PATH, discard_untrained, run_task
from genlab.tasks.comparison import arm_model_or_skip
from genlab.tasks.distributed import distributed_job
from genlab.tasks.overrides import comma_lists
from genlab.tasks.resume import keep_csv_logs_of_earlier_segments, resume_checkpoint
from genlab.tasks.resume import rewrite_args as resume_args
from genlab.tasks.signals import SignalGuard, exit_code, guard_sigterm, signal_name
from genlab.tasks.synthetic import prepare_synthetic

log = logging.getLogger("genlab")


def rewrite_args(args: list[str]) -> list[str]:
    """``resume=DIR [trainer limits]``: compose the run's own saved config (see :mod:`genlab.tasks.resume`);
    ``model.diffaug=translation,cutout`` is passed as a list (:func:`genlab.tasks.overrides.comma_lists`)."""
    return resume_args(comma_lists(args))


def train(cfg: DictConfig) -> dict[str, Any]:
    """Build everything from ``cfg``, fit, test the best checkpoint, write ``metrics.json``."""
    if cfg.get("sampler_study") is not None:
        raise GenlabError(
            "experiment=sampler_study is a preset of genlab eval, not of train: train a diffusion run, then "
            "`genlab eval experiment=sampler_study run=DIR`."
        )
    migrate_config(cfg)
    keep_csv_logs_of_earlier_segments(cfg)
    loggers = instantiate_loggers(cfg)  # a tracker that cannot work is refused before anything trains
    seed_everything(cfg.seed, workers=True)
    datamodule = instantiate_datamodule(cfg)
    model = arm_model_or_skip(cfg, instantiate_model)
    if model is None:  # an arm of a model comparison that cannot take this data: the reason is recorded
        return {"status": "skipped"}
    generator_scores = prepare_synthetic(cfg, datamodule, model, train)
    if generator_scores:
        seed_everything(cfg.seed, workers=True)
    augmentation = datamodule.augmentation
    if augmentation is not None and augmentation.mixes_labels and not isinstance(model, Classifies):
        raise GenlabError(
            f"augment={augmentation.name} mixes labels and only works with a classifier (model=cnn), "
            f"not model={cfg.model.name}."
        )
    callbacks = instantiate_callbacks(cfg) + fid_callbacks(cfg, model, datamodule)
    trainer = instantiate_trainer(cfg, callbacks, loggers)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    with guard_sigterm() as guard:
        return _fit_and_score(cfg, trainer, model, datamodule, guard, generator_scores)


def _fit_and_score(
    cfg: DictConfig, trainer: Any, model: Any, datamodule: Any, guard: SignalGuard, extra: dict[str, float]
) -> dict[str, Any]:
    """Fit, test, score; a signal at any stage is recorded in metrics.json and stops the command."""
    run_dir = Path(cfg.paths.run_dir)
    with distributed_job():
        try:
            with guard.during_fit():
                trainer.fit(model, datamodule=datamodule, ckpt_path=resume_checkpoint(cfg))
        except SIGTERMException:  # RunStatus recorded it and wrote last.ckpt at the step reached
            raise Interrupted(
                f'SIGTERM: training stopped at step {trainer.global_step}; metrics.json says "interrupted". '
                f"Continue with `genlab train resume={run_dir}`.",
                128 + signal.SIGTERM,
            ) from None
        status = "interrupted" if trainer.interrupted else "completed"
        metrics = scalar_metrics(trainer.callback_metrics)
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint is not None and checkpoint.monitor is not None else ""
        if cfg.test and status == "completed" and is_overridden("test_step", model):
            results = trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)
            metrics.update(scalar_metrics(results[0]))
    metrics.update(extra)
    if best:
        metrics["best_checkpoint"] = (
            str(Path(best).relative_to(run_dir)) if Path(best).is_relative_to(run_dir) else best
        )
    # Under DDP the process group is gone here: rank 0 alone samples and scores the end-of-training FID.
    if status == "completed" and trainer.is_global_zero:
        try:
            try:
                metrics.update(end_of_training_scores(cfg, model, datamodule))
            except SystemExit:  # a nested Lightning fit (the reference classifier's) ends an interrupt so
                if guard.received is None:
                    raise
                raise guard.received from None
        except KeyboardInterrupt as stop:
            metrics.update(status="interrupted", stopped_by=signal_name(stop), global_step=trainer.global_step)
            metrics["interrupted_during"] = "end-of-training scores (training had completed)"
            write_json(run_dir / "metrics.json", metrics)
            raise Interrupted(
                f"{signal_name(stop)} during the end-of-training scores: training had completed and is kept "
                f"(checkpoints/last.ckpt); score it with `genlab eval run={run_dir}`.",
                exit_code(stop),
            ) from None
    metrics["status"] = status
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics)
        log_final_metrics(trainer.loggers, metrics, trainer.global_step)
        close_loggers(trainer.loggers)
        summary = ", ".join(
            f"{k}={v:.4f}" for k, v in metrics.items() if k.startswith(("test/", "fid")) and isinstance(v, float)
        )
        log.info("run folder: %s %s", run_dir, f"({summary})" if summary else "")
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point of ``genlab train``; returns ``tune.objective`` (e.g. the FID) to a Hydra sweeper."""
    run_dir = Path(cfg.paths.run_dir)
    metrics = run_task(train, cfg, cleanup=None if cfg.get("resume") else lambda: discard_untrained(run_dir))
    objective = OmegaConf.select(cfg, "tune.objective")
    return metrics.get(objective) if objective else None


def train_into(overrides: list[str], run_dir: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Compose the train config with ``overrides``, train into ``run_dir`` (default: a new
    ``<output_root>/train/<date_time>_<model>_<data>``) with its saved config; return the folder and metrics."""
    cfg = compose_config("train", overrides)
    if run_dir is None:
        stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
        run_dir = Path(cfg.paths.output_root).resolve() / "train" / f"{stamp}_{cfg.model.name}_{cfg.data.name}"
    with open_dict(cfg):
        cfg.paths.run_dir = str(run_dir)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml", resolve=False)
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    return run_dir, train(cfg)


def train_in_python(overrides: list[str]) -> Run:
    """``genlab.train``: compose the train config, train into a new run folder, return the loaded run."""
    run_dir, metrics = train_into(overrides)
    if metrics.get("status") != "completed":
        raise GenlabError(f"training ended '{metrics.get('status')}': see {run_dir / 'metrics.json'}.")
    return Run.load(run_dir)
