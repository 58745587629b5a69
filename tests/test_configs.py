"""Every yaml of every config group composes and instantiates (new options are covered by themselves)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FAST, data_overrides
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import LightningModule

from genlab.build import (
    CONFIG_DIR,
    instantiate_callbacks,
    instantiate_datamodule,
    instantiate_loggers,
    instantiate_model,
    instantiate_trainer,
)

GROUPS = [
    "data",
    "model",
    "model/loss",
    "model/head",
    "model/sampler",
    "noise_dist",
    "schedule",
    "trainer",
    "augment",
    "logger",
    "callbacks",
    "paths",
    "hydra",
    "experiment",
]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def test_every_group_of_the_design_exists():
    for group in GROUPS:
        assert options(group), group


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in options(g)])
def test_option_composes_and_instantiates(cfg_factory, data_root, tmp_path, group, option):
    if group == "data":
        overrides = data_overrides(option, data_root)
    elif group in ("model/loss", "model/head"):
        overrides = ["model=cgan", f"{group}={option}"]
        if option == "multiclass":
            overrides = ["model=cgan", "model/head=multiclass"]
        if option == "hinge":
            overrides.append("model.discriminator.head._target_=genlab.nets.gan_heads.RealFakeHead")
    elif group == "model/sampler":
        overrides = ["model=ddpm", f"{group}={option}"]
    elif group in ("hydra", "paths"):
        overrides = []
    else:
        overrides = [f"{group}={option}"]
    if group == "trainer" and option.startswith("ddp"):
        overrides.append("trainer.devices=1")
    cfg = cfg_factory("train", overrides)
    OmegaConf.resolve(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))
    if group == "data":
        instantiate_datamodule(cfg).setup()
    elif group == "model":
        # a model node is a plain Hydra object: hydra.utils.instantiate alone builds it
        assert isinstance(instantiate(cfg.model), LightningModule)
        instantiate_model(cfg)
    elif group.startswith("model/"):
        assert isinstance(instantiate(cfg.model), LightningModule)
    elif group in ("noise_dist", "schedule", "augment"):
        instantiate(cfg[group])
    elif group == "logger":
        instantiate_loggers(cfg)
    elif group == "callbacks":
        instantiate_callbacks(cfg)
    elif group == "trainer" and "gpu" not in option and option != "ddp":
        instantiate_trainer(cfg, [], [])
    elif group == "experiment":
        assert isinstance(cfg.model, DictConfig) and "name" in cfg.model


def test_fast_overrides_compose(cfg_factory):
    cfg = cfg_factory("train", FAST)
    assert cfg.trainer.max_epochs == 1 and cfg.callbacks.progress_bar is None


@pytest.mark.parametrize(("model", "epochs"), [("cnn", 20), ("gan", 100), ("dcgan", 30), ("cgan", 30), ("ddpm", 50)])
def test_each_model_declares_its_default_epoch_budget(cfg_factory, model, epochs):
    assert cfg_factory("train", [f"model={model}"]).trainer.max_epochs == epochs
    assert cfg_factory("train", [f"model={model}", "trainer.max_epochs=3"]).trainer.max_epochs == 3
