"""``genlab train resume=DIR``: continue a run with its own saved config, in its own folder.

Only trainer limits may change. A run that already reached its limits is left untouched (the command
says so and exits), and a corrupt or crafted checkpoint is refused before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from genlab.errors import GenlabError
from genlab.io import safe_torch_load
from genlab.runs import check_run_dir

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
    # Refuse a corrupt or crafted checkpoint, or a finished run, before anything is written into the run folder.
    check_not_complete(run_dir, safe_torch_load(run_dir / "checkpoints" / "last.ckpt"), others)
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


def _limit(run_dir: Path, others: list[str], key: str) -> int | None:
    """A trainer limit after the resume: given on the command line, else the run's saved value."""
    given = [a.split("=", 1)[1] for a in others if a.lstrip("+~").startswith(f"trainer.{key}=")]
    if given:
        return None if given[-1] in ("null", "None") else int(given[-1])
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    value = OmegaConf.select(saved, f"trainer.{key}", default=None)
    return None if value is None else int(value)


def check_not_complete(run_dir: Path, checkpoint: dict, others: list[str]) -> None:
    """Refuse to resume a run that completed and already reached the limits it would resume to."""
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.is_file() or json.loads(metrics_file.read_text()).get("status") != "completed":
        return
    epochs_done = int(checkpoint.get("epoch", -1)) + 1
    steps_done = int(checkpoint.get("global_step", 0))
    max_epochs, max_steps = _limit(run_dir, others, "max_epochs"), _limit(run_dir, others, "max_steps")
    reached = (max_epochs is not None and 0 <= max_epochs <= epochs_done) or (
        max_steps is not None and 0 < max_steps <= steps_done
    )
    if reached:
        raise GenlabError(
            f"resume={run_dir}: the run is already complete ({epochs_done} epochs, {steps_done} steps; limits "
            f"trainer.max_epochs={max_epochs}, trainer.max_steps={max_steps}). Nothing was changed. To train "
            f"further, raise a limit, e.g. trainer.max_epochs={epochs_done + 10}."
        )
