"""Session fixtures of the evaluation tests: a tiny reference classifier in a shared cache, random
Inception weights (offline), and small trained run folders made by ``genlab.tasks.train.train``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar
from unittest import mock

import pytest
import torch
import yaml
from conftest import FAST, REPO_ROOT, compose_config
from omegaconf import OmegaConf

T = TypeVar("T")
TESTS_DIR = Path(__file__).resolve().parent
SEARCHPATH = f"hydra.searchpath=[file://{TESTS_DIR / 'configs'}]"
# A small, quick reference classifier; every command in these tests passes the same settings (cache key).
TINY_CLASSIFIER = [
    "eval.reference_classifier.widths=[8,16]",
    "eval.reference_classifier.max_epochs=2",
    "eval.reference_classifier.batch_size=32",
]
# Environment of CLI subprocesses: the test generator importable, the shared cache.
PYTHONPATH = os.pathsep.join([str(REPO_ROOT), str(TESTS_DIR)])


def cli_env(cache_dir: Path, **extra: str) -> dict[str, str]:
    """``run_cli`` environment: tests/ on the import path, the session's cache."""
    return {"PYTHONPATH": PYTHONPATH, "GENLAB_CACHE_DIR": str(cache_dir), **extra}


def make_run(run_dir: Path, overrides: Sequence[str], cache_dir: Path) -> Path:
    """Train a run in-process and save its config as the CLI would (``.hydra/config.yaml``, overrides)."""
    from genlab.tasks.train import train

    cfg = compose_config("train", [*FAST, *overrides, *TINY_CLASSIFIER], run_dir)
    cfg.paths.cache_dir = str(cache_dir)
    hydra_dir = run_dir / ".hydra"
    hydra_dir.mkdir(parents=True)
    OmegaConf.save(cfg, hydra_dir / "config.yaml")
    (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump([o for o in overrides if "searchpath" not in o]))
    train(cfg)
    return run_dir


def once(builder: Callable[[pytest.TempPathFactory], T]) -> Callable[[pytest.TempPathFactory], T]:
    """Build at most once per session (one pytest session per process)."""
    built: dict[str, T] = {}

    @functools.wraps(builder)
    def get(factory: pytest.TempPathFactory) -> T:
        if "value" not in built:
            built["value"] = builder(factory)
        return built["value"]

    return get


@once
def _eval_cache(factory: pytest.TempPathFactory) -> Path:
    from genlab.scoring.reference import reference_classifier

    cache = factory.mktemp("eval_cache")
    cfg = compose_config("train", TINY_CLASSIFIER, cache / "unused")
    reference_classifier(cfg.data, cfg.eval, cache, torch.device("cpu"))
    return cache


@once
def _runs(factory: pytest.TempPathFactory) -> dict[str, Path]:
    cache = _eval_cache(factory)
    root = factory.mktemp("runs")
    sweep = root / "sweep"
    common = [SEARCHPATH, "model=replay", "eval.n_at_end=100"]
    periodic = ["eval.every_n_epochs=1", "eval.n_during=40"]
    return {
        "data": make_run(sweep / "0_model.mode=data", [*common, *periodic, "model.mode=data"], cache),
        "noise": make_run(sweep / "1_model.mode=noise", [*common, "model.mode=noise"], cache),
        "sweep": sweep,
        "cnn16": make_run(root / "cnn16", ["model=cnn", "data.image_size=16", "model.net.widths=[8,16]"], cache),
    }


@once
def _inception_weights_file(factory: pytest.TempPathFactory) -> Path:
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    with (
        mock.patch.object(fe, "load_state_dict_from_url", return_value={}),
        mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", return_value=None),
    ):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.manual_seed(0)
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = factory.mktemp("inception") / "weights-inception-random.pth"
    torch.save(net.state_dict(), path)
    return path


# The fixtures below are imported by several test modules; the cached builders above make each
# session-wide object once per session, not once per importing module.
@pytest.fixture(scope="session")
def eval_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the tiny reference classifier of digits at 32 px (trained once)."""
    return _eval_cache(tmp_path_factory)


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders: ``data``/``noise`` replay generators (a sweep of ``model.mode``; ``data`` also logs
    ``val/fid`` every epoch) and a ``model=cnn`` run at 16 px."""
    return _runs(tmp_path_factory)


@pytest.fixture(scope="session")
def inception_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torch-fidelity's Inception-v3 with random (kaiming) weights, saved as a state_dict (~96 MB)."""
    return _inception_weights_file(tmp_path_factory)
