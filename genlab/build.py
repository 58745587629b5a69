"""Building the objects of a run from its composed config, and reading saved runs back.

Everything here is shared by the commands (:mod:`genlab.tasks`) and the Python API
(:mod:`genlab.api`): the configs' location, the datamodule/model/callbacks/loggers/trainer built from
``_target_`` nodes, the run folder's saved config (migrated from older genlab versions) and its
checkpoints, loaded weights-only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning import Callback, LightningDataModule, LightningModule, Trainer
from pytorch_lightning.loggers import Logger
from safetensors.torch import load_file

from genlab import resolvers
from genlab.callbacks.trackers import check_logger
from genlab.capabilities import Exports
from genlab.errors import GenlabError
from genlab.io import safe_torch_load
from genlab.models.switches import SWITCH_KEYS, apply_switches, check_precision
from genlab.runs import check_run_dir

log = logging.getLogger("genlab")


def _find_config_dir() -> Path:
    """The configs folder: inside the installed package, else the source checkout's top level."""
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / "configs", package_dir.parent / "configs"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise RuntimeError(f"genlab's configs/ folder was not found beside {package_dir}")


CONFIG_DIR = _find_config_dir()


def register_samplers(config_dir: Path = CONFIG_DIR) -> None:
    """Import the class of every ``configs/model/sampler/<name>.yaml``: each joins the sampler registry by name."""
    for path in sorted((config_dir / "model" / "sampler").glob("*.yaml")):
        get_class(OmegaConf.load(path)["_target_"])


register_samplers()
resolvers.register()


def compose_config(config_name: str, overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """A primary config with ``overrides``, inside or outside a running Hydra app (with its ``hydra`` node
    when ``return_hydra_config``)."""
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)


def instantiate_datamodule(cfg: DictConfig, train: bool = True) -> LightningDataModule:
    """The data config's LightningDataModule, with the augment pipeline for training batches."""
    augmentation = instantiate(cfg.augment) if train and "augment" in cfg else None
    return instantiate(cfg.data, augmentation=augmentation, _recursive_=False)


def instantiate_model(cfg: DictConfig) -> LightningModule:
    """``hydra.utils.instantiate(cfg.model)``, with the ``speed`` switches applied to its networks."""
    model = instantiate(cfg.model)
    switches = {key: cfg.speed[key] for key in SWITCH_KEYS if key in cfg.get("speed", {})}
    return apply_switches(model, **switches)


def _instantiate_group(node: DictConfig | None) -> list[Any]:
    """Every entry of a group node that has a ``_target_`` (null entries are skipped)."""
    return [instantiate(item) for item in (node or {}).values() if isinstance(item, DictConfig) and "_target_" in item]


def instantiate_callbacks(cfg: DictConfig) -> list[Callback]:
    """Every entry of ``cfg.callbacks`` that has a ``_target_``."""
    return _instantiate_group(cfg.get("callbacks"))


def instantiate_loggers(cfg: DictConfig) -> list[Logger]:
    """Every entry of ``cfg.logger`` that has a ``_target_``; a tracker whose package is missing or whose
    server does not answer is refused first (:func:`genlab.callbacks.trackers.check_logger`)."""
    for key, node in (cfg.get("logger") or {}).items():
        if isinstance(node, DictConfig) and "_target_" in node:
            check_logger(str(key), node)
    return _instantiate_group(cfg.get("logger"))


def instantiate_trainer(cfg: DictConfig, callbacks: list[Callback], loggers: list[Logger]) -> Trainer:
    """The Lightning Trainer from ``cfg.trainer``."""
    accelerator = cfg.trainer.get("accelerator", "auto")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise GenlabError(
            f"trainer.accelerator={accelerator} needs a CUDA GPU, but torch {torch.__version__} sees none on this "
            "machine: train on the CPU with trainer=cpu (or the default trainer.accelerator=auto), or install a "
            "CUDA build of torch on a machine with a GPU."
        )
    check_precision(cfg.trainer.get("precision", "32-true"), accelerator)
    return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)


# ------------------------------------------------------------------------------------ saved runs

DIFFUSION_TARGET = "genlab.models.ddpm.DiffusionModule"
GAN_TARGET = "genlab.models.gan.GANModule"
OLD_SAMPLER_KEYS = ("steps", "eta", "variance", "clip_x0")


def migrate_config(cfg: DictConfig) -> DictConfig:
    """Bring a run config written by genlab 0.1 to today's layout, in place (a no-op for current ones).

    0.1 kept the speed switches in the model node, named the diffusion sampler by a string with its
    options beside it, and gave every model the generic sample-grid callback.
    """
    if "speed" in cfg:
        return cfg
    with open_dict(cfg):
        cfg.speed = {key: cfg.model.pop(key) for key in SWITCH_KEYS if key in cfg.model}
        if cfg.model.get("_target_") == DIFFUSION_TARGET and isinstance(cfg.model.get("sampler"), str):
            name = cfg.model.pop("sampler")
            options = {key: cfg.model.pop(key) for key in OLD_SAMPLER_KEYS if key in cfg.model}
            if name == "ddpm":
                options = {k: v for k, v in options.items() if k in ("variance", "clip_x0")}
            else:
                options = {k: v for k, v in options.items() if k != "variance" and v is not None}
            target = OmegaConf.load(CONFIG_DIR / "model" / "sampler" / f"{name}.yaml")["_target_"]
            cfg.model.sampler = {"_target_": target, **options}
        callbacks = cfg.get("callbacks") or {}
        if "image_grid" in callbacks and cfg.model.get("_target_") != GAN_TARGET:
            callbacks.pop("image_grid")
    return cfg


def load_run_config(run_dir: str | Path | None) -> DictConfig:
    """The saved config of a train run (migrated to today's layout), with ``paths.run_dir`` at that folder."""
    run_path = check_run_dir(run_dir)
    run_cfg = migrate_config(OmegaConf.load(run_path / ".hydra" / "config.yaml"))
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


def load_weights(model: LightningModule, ckpt_path: Path) -> LightningModule:
    """Load a genlab checkpoint's weights into ``model`` (weights only; older checkpoints migrated)."""
    checkpoint = safe_torch_load(ckpt_path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise GenlabError(f"checkpoint '{ckpt_path}' holds no 'state_dict': it was not written by genlab train.")
    model.on_load_checkpoint(checkpoint)
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise GenlabError(f"checkpoint '{ckpt_path}' does not match the run's model config ({first}).") from None
    return model


def load_export(directory: str | Path) -> tuple[DictConfig, LightningModule, Path]:
    """A ``genlab export`` folder's config, the model it builds with ``model.safetensors`` loaded into its sampling
    network (the EMA copy where there is one; the rest keeps its initial weights), and the weights file."""
    folder = Path(directory)
    weights, config_file = folder / "model.safetensors", folder / "config.yaml"
    if not weights.is_file() or not config_file.is_file():
        raise GenlabError(f"{folder} is not a genlab export: it needs model.safetensors and config.yaml.")
    config = OmegaConf.load(config_file)
    model = instantiate_model(config)
    if not isinstance(model, Exports):
        raise GenlabError(f"model={config.model.name} in {config_file} has no single sampling network to load.")
    try:
        model.sampling_network().load_state_dict(load_file(weights))
    except RuntimeError as err:
        raise GenlabError(f"{weights} does not match {config_file} ({str(err).splitlines()[0]}).") from None
    return config, model, weights


def pick_device(name: str | None) -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise GenlabError(f"device={name}: this machine has no CUDA GPU (torch sees none); use device=cpu or auto.")
    return torch.device(name)
