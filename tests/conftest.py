"""Shared fixtures: compose the real configs with outputs under tmp_path, run the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several test processes share the cores: one thread each (inherited by CLI subprocesses)
    # avoids the slowdown of oversubscribed OpenMP thread pools.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Nothing phones home from the tests: MLflow's and Gradio's usage telemetry off, W&B offline.
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("WANDB_MODE", "offline")

import pytest
import torch
from cli_zygote import ZygotePool
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from genlab.build import CONFIG_DIR

REPO_ROOT = Path(__file__).resolve().parent.parent
# CLI calls fork a preloaded interpreter (tests/cli_zygote.py) unless GENLAB_TEST_NO_ZYGOTE is set.
ZYGOTES = None if os.environ.get("GENLAB_TEST_NO_ZYGOTE") else ZygotePool(REPO_ROOT)
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

# Small, quiet training: enough to exercise every hook in a few seconds.
FAST = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "trainer.accelerator=cpu",
    "eval.n_at_end=0",
]

# A DDPM small enough for a few CPU training steps (add model=ddpm or model=cddpm).
TINY_DDPM = [
    "schedule.timesteps=10",
    "data.image_size=16",
    "model.net.base_channels=8",
    "model.net.channel_mults=[1,2]",
    "model.net.attention_resolutions=[8]",
]


def compose_config(config_name: str, overrides: Sequence[str], run_dir: Path) -> DictConfig:
    """Compose a primary config as the CLI would, with ``paths.run_dir`` set to ``run_dir``."""
    if config_name in ("sample", "eval"):
        from genlab.tasks.common import plus_unknown_keys

        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            overrides = plus_unknown_keys(list(overrides), config_name)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.run_dir = str(run_dir)
        cfg.paths.output_root = str(run_dir.parent)
        cfg.paths.cache_dir = str(run_dir.parent / "cache")
    return cfg


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fixture files of every dataset in its real on-disk format (use as paths.data_dir)."""
    from fixture_data import write_all

    return write_all(tmp_path_factory.mktemp("datasets"))


# Overrides that make each dataset small enough for the fixture files under ``data_root``.
DATA_OVERRIDES = {
    "mnist": ["data.val_size=10", "data.download=false"],
    "fashion_mnist": ["data.val_size=10", "data.download=false"],
    "cifar10": ["data.val_size=10", "data.download=false"],
    "celeba": ["data.num_workers=0", "data.batch_size=4"],
    "image_folder": ["data.num_workers=0", "data.num_classes=2", "data.batch_size=4"],
    "paired_folder": ["data.num_workers=0", "data.image_size=32", "data.load_size=36", "data.batch_size=2"],
    "unpaired_folder": ["data.num_workers=0", "data.image_size=32", "data.load_size=36", "data.batch_size=2"],
}


def data_overrides(name: str, root: Path) -> list[str]:
    """Overrides selecting fixture dataset ``name`` read from ``root``."""
    extra = [f"data.root={root / 'folder'}"] if name == "image_folder" else [f"paths.data_dir={root}"]
    return [f"data={name}", *DATA_OVERRIDES.get(name, []), *extra]


@pytest.fixture
def cfg_factory(tmp_path: Path) -> Callable[..., DictConfig]:
    """``cfg_factory("train", ["model=cnn"])`` → a composed config writing under tmp_path/run."""

    def make(config_name: str = "train", overrides: Sequence[str] = ()) -> DictConfig:
        return compose_config(config_name, overrides, tmp_path / "run")

    return make


def zygote_can_run(args: Sequence[str], env: dict[str, str]) -> bool:
    """A forked zygote behaves as a fresh interpreter except for interpreter start-up (``sitecustomize`` on the
    path) and DDP, whose launcher re-runs the command line."""
    paths = [Path(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return not any("ddp" in str(arg) for arg in args) and not any((p / "sitecustomize.py").exists() for p in paths)


def run_cli(args: Sequence[str], cwd: Path, timeout: float = 600, env: dict[str, str] | None = None):
    """Run ``python -m genlab ARGS`` from ``cwd`` with this checkout first on the import path."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "GENLAB_DEBUG")}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), full_env.get("PYTHONPATH")]))
    full_env.setdefault("GENLAB_CACHE_DIR", str(cwd / "cache"))
    full_env["GENLAB_DATA_DIR"] = full_env.get("GENLAB_TEST_DATA_DIR", str(cwd / "data"))
    full_env.update(env or {})
    if ZYGOTES is not None and zygote_can_run(args, full_env):
        return ZYGOTES.run(list(args), cwd, full_env, timeout)
    return subprocess.run(
        [sys.executable, "-m", "genlab", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def only_run_dir(root: Path, command: str = "train") -> Path:
    """The single run folder the CLI created under ``root/outputs/<command>/``."""
    runs = sorted((root / "outputs" / command).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def load_model(run_dir: Path | str, ckpt: str = "last"):
    """The trained model of a run folder, rebuilt through the run API on the CPU."""
    from genlab.api import Run

    return Run.load(run_dir, ckpt, "cpu").model


def model_from_config(cfg: DictConfig, checkpoint: Path):
    """A model built from a composed config with a checkpoint's weights (for runs without a saved config)."""
    from genlab.build import instantiate_model, load_weights

    return load_weights(instantiate_model(cfg), checkpoint).eval()
