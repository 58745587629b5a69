"""Building blocks shared by the commands: config location, error reporting, and the
construction of datamodule, model, callbacks, loggers and trainer from a composed config."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning import Callback, LightningDataModule, LightningModule, Trainer
from pytorch_lightning.loggers import Logger

from genlab.errors import GenlabError
from genlab.io import safe_torch_load
from genlab.models.switches import SWITCH_KEYS, apply_switches, check_precision
from genlab.runs import check_run_dir
from genlab.validate import check_integer_options

log = logging.getLogger("genlab")

# Keep the console about the run: drop Lightning's advertisement and a torch-internal deprecation notice.
logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
    lambda record: "litlogger" not in record.getMessage()
)
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")

MODEL_META_KEYS = ("name", "monitor", "epochs")


def _find_config_dir() -> str:
    """The configs folder: inside the installed package, else the source checkout's top level."""
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "configs", package_dir.parent / "configs"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"genlab's configs/ folder was not found beside {package_dir}")


CONFIG_DIR = _find_config_dir()


def user_error_message(err: BaseException) -> str | None:
    """The message to show for an error the user can fix, or None for a bug."""
    if isinstance(err, GenlabError):
        return str(err)
    if isinstance(err, InstantiationException):
        cause = err.__cause__
        if isinstance(cause, GenlabError):
            return str(cause)
        return str(err).strip()
    return None


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run a command, turning user errors into one clear message and exit status 2.

    Set ``GENLAB_DEBUG=1`` to see the full traceback instead.
    """
    try:
        check_integer_options(cfg)
        return task(cfg)
    except Exception as err:
        message = user_error_message(err)
        if message is None or os.environ.get("GENLAB_DEBUG"):
            raise
        record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)
        print(f"genlab: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


def instantiate_datamodule(cfg: DictConfig, train: bool = True) -> LightningDataModule:
    """The data config's LightningDataModule, with the augment pipeline for training batches."""
    augmentation = instantiate(cfg.augment) if train and "augment" in cfg else None
    return instantiate(cfg.data, augmentation=augmentation, _recursive_=False)


def instantiate_model(cfg: DictConfig) -> LightningModule:
    """The model config's LightningModule (meta keys such as ``name`` are not passed on), with the
    GPU switches ``model.channels_last`` / ``model.compile`` applied to its networks."""
    resolved = OmegaConf.to_container(cfg.model, resolve=True)
    model_cfg = {k: v for k, v in resolved.items() if k not in (*MODEL_META_KEYS, *SWITCH_KEYS)}
    switches = {k: resolved[k] for k in SWITCH_KEYS if k in resolved}
    return apply_switches(instantiate(model_cfg, _convert_="partial"), **switches)


def instantiate_callbacks(cfg: DictConfig) -> list[Callback]:
    """Every entry of ``cfg.callbacks`` that has a ``_target_`` (null entries are skipped)."""
    return [
        instantiate(node)
        for node in (cfg.get("callbacks") or {}).values()
        if isinstance(node, DictConfig) and "_target_" in node
    ]


def instantiate_loggers(cfg: DictConfig) -> list[Logger]:
    """Every entry of ``cfg.logger`` that has a ``_target_``."""
    return [
        instantiate(node)
        for node in (cfg.get("logger") or {}).values()
        if isinstance(node, DictConfig) and "_target_" in node
    ]


def instantiate_trainer(cfg: DictConfig, callbacks: list[Callback], loggers: list[Logger]) -> Trainer:
    """The Lightning Trainer from ``cfg.trainer``."""
    check_precision(cfg.trainer.get("precision", "32-true"), cfg.trainer.get("accelerator", "auto"))
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


def load_run_config(run_dir: str | Path | None) -> DictConfig:
    """The saved config of a train run, with ``paths.run_dir`` pointing at that folder."""
    run_path = check_run_dir(run_dir)
    run_cfg = OmegaConf.load(run_path / ".hydra" / "config.yaml")
    with open_dict(run_cfg):
        run_cfg.paths.run_dir = str(run_path.resolve())
    return run_cfg


def resolve_checkpoint(run_dir: str | Path, ckpt: str | None) -> Path:
    """``last`` / ``best`` / an explicit path to an existing checkpoint file."""
    choice = ckpt or "last"
    path = Path(run_dir) / "checkpoints" / f"{choice}.ckpt" if choice in ("last", "best") else Path(choice)
    if not path.is_file():
        raise GenlabError(
            f"checkpoint '{path}' does not exist. Use ckpt=last, ckpt=best or ckpt=PATH to a .ckpt file "
            "written by genlab train."
        )
    return path


def load_trained_model(run_cfg: DictConfig, ckpt_path: Path, device: torch.device) -> LightningModule:
    """Rebuild the run's model from its config and load the checkpoint's weights (weights only)."""
    model = instantiate_model(run_cfg)
    checkpoint = safe_torch_load(ckpt_path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise GenlabError(f"checkpoint '{ckpt_path}' holds no 'state_dict': it was not written by genlab train.")
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise GenlabError(f"checkpoint '{ckpt_path}' does not match the run's model config ({first}).") from None
    return model.to(device).eval()


def pick_device(name: str | None) -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
