"""``genlab train``: fit a model on a dataset and write a run folder."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning import seed_everything
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
from genlab.capabilities import Classifies
from genlab.errors import GenlabError
from genlab.io import safe_torch_load, scalar_metrics, write_json
from genlab.runs import check_run_dir
from genlab.scoring.training import end_of_training_scores, fid_callbacks
from genlab.tasks.common import CONFIG_PATH, run_task
from genlab.tasks.distributed import distributed_job
from genlab.tasks.synthetic import prepare_synthetic

log = logging.getLogger("genlab")


# Overrides that may change when a run is resumed: how long it trains and where, not what it trains.
RESUMABLE_OVERRIDES = (
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.max_time",
    "trainer.limit_",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.enable_progress_bar",
    "callbacks.progress_bar",
)


def rewrite_args(args: list[str]) -> list[str]:
    """``resume=DIR [trainer limits]`` → compose the run's own saved config and write into DIR.

    Hydra then reads ``DIR/.hydra/config.yaml`` as the primary config and leaves ``DIR/.hydra``
    untouched (``hydra.output_subdir=null``); other overrides are refused.
    """
    resume = [arg for arg in args if arg.startswith("resume=")]
    if not resume or resume[0] == "resume=null":
        return args
    run_dir = check_run_dir(resume[0].split("=", 1)[1], option="resume").resolve()
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise GenlabError(f"resume={run_dir}: there is no checkpoints/last.ckpt to resume from.")
    others = [arg for arg in args if arg not in resume]
    for arg in others:
        if arg in ("-m", "--multirun") or not arg.lstrip("+~").startswith(RESUMABLE_OVERRIDES):
            raise GenlabError(
                f"resume= continues a run with its own config; '{arg}' cannot change. Only trainer limits may "
                "(e.g. trainer.max_epochs=50, trainer.max_steps=...). Start a new run to change anything else."
            )
    # Refuse a corrupt or crafted checkpoint before anything is written into the run folder.
    safe_torch_load(run_dir / "checkpoints" / "last.ckpt")
    return [
        "--config-dir",
        str(run_dir / ".hydra"),
        "--config-name",
        "config",
        f"hydra.run.dir={run_dir}",
        "hydra.output_subdir=null",
        "hydra.job.name=train",
        f"++resume={run_dir}",
        *others,
    ]


def resume_checkpoint(cfg: DictConfig) -> str | None:
    """``<resume>/checkpoints/last.ckpt`` when resuming, else None."""
    return str(Path(cfg.resume) / "checkpoints" / "last.ckpt") if cfg.get("resume") else None


def keep_csv_logs_of_earlier_segments(cfg: DictConfig) -> None:
    """On resume, the CSV logger writes into ``csv/resume_<k>/``: Lightning's CSV logger rewrites its
    folder's metrics.csv, which would drop the rows logged before the interruption."""
    csv_node = (cfg.get("logger") or {}).get("csv")
    if not cfg.get("resume") or csv_node is None:
        return
    folder = Path(str(csv_node.save_dir)) / str(csv_node.name)
    k = 1
    while (folder / f"resume_{k}").exists():
        k += 1
    with open_dict(cfg):
        csv_node.version = f"resume_{k}"


def train(cfg: DictConfig) -> dict[str, Any]:
    """Build everything from ``cfg``, fit, test the best checkpoint, write ``metrics.json``."""
    migrate_config(cfg)
    keep_csv_logs_of_earlier_segments(cfg)
    seed_everything(cfg.seed, workers=True)
    run_dir = Path(cfg.paths.run_dir)
    datamodule = instantiate_datamodule(cfg)
    model = instantiate_model(cfg)
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
    trainer = instantiate_trainer(cfg, callbacks, instantiate_loggers(cfg))
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    status = "completed"
    with distributed_job():
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_checkpoint(cfg))
        if trainer.interrupted:
            status = "interrupted"
        metrics = scalar_metrics(trainer.callback_metrics)
        checkpoint = trainer.checkpoint_callback
        best = checkpoint.best_model_path if checkpoint is not None else ""
        if cfg.test and status == "completed" and is_overridden("test_step", model):
            results = trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)
            metrics.update(scalar_metrics(results[0]))
    # Under DDP the process group is gone here: rank 0 alone samples and scores the end-of-training FID.
    if status == "completed" and trainer.is_global_zero:
        metrics.update(end_of_training_scores(cfg, model, datamodule))
    metrics.update(generator_scores)
    metrics["status"] = status
    if best:
        metrics["best_checkpoint"] = (
            str(Path(best).relative_to(run_dir)) if Path(best).is_relative_to(run_dir) else best
        )
    if trainer.is_global_zero:
        write_json(run_dir / "metrics.json", metrics)
        summary = ", ".join(
            f"{k}={v:.4f}" for k, v in metrics.items() if k.startswith(("test/", "fid")) and isinstance(v, float)
        )
        log.info("run folder: %s %s", run_dir, f"({summary})" if summary else "")
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> None:
    """Hydra entry point of ``genlab train``."""
    run_task(train, cfg)


def train_in_python(overrides: list[str]) -> Run:
    """``genlab.train``: compose the train config, train into a new run folder, return the loaded run."""
    cfg = compose_config("train", overrides)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    run_dir = Path(cfg.paths.output_root).resolve() / "train" / f"{stamp}_{cfg.model.name}_{cfg.data.name}"
    with open_dict(cfg):
        cfg.paths.run_dir = str(run_dir)
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml", resolve=False)
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    metrics = train(cfg)
    if metrics.get("status") != "completed":
        raise GenlabError(f"training ended '{metrics.get('status')}': see {run_dir / 'metrics.json'}.")
    return Run.load(run_dir)
