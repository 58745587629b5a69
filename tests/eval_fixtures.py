"""Session fixtures of the evaluation tests: a tiny reference classifier in a shared cache, random
Inception weights (offline), and small trained run folders made by ``genlab.tasks.train.train``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml
from conftest import FAST, REPO_ROOT, compose_config
from omegaconf import OmegaConf

TESTS_DIR = Path(__file__).resolve().parent
SEARCHPATH = f"hydra.searchpath=[file://{TESTS_DIR / 'configs'}]"
# A small, quick reference classifier; every command in these tests passes the same settings (cache key).
TINY_CLASSIFIER = [
    "eval.reference_classifier.widths=[8,16]",
    "eval.reference_classifier.max_epochs=3",
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


@pytest.fixture(scope="session")
def eval_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the tiny reference classifier of digits at 32 px (trained once)."""
    from genlab.metrics.reference import reference_classifier

    cache = tmp_path_factory.mktemp("eval_cache")
    cfg = compose_config("train", TINY_CLASSIFIER, cache / "unused")
    reference_classifier(cfg.data, cfg.eval, cache, torch.device("cpu"))
    return cache


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory, eval_cache: Path) -> dict[str, Path]:
    """Run folders: ``data``/``noise`` replay generators (a sweep of ``model.mode``) and a 16-px cnn."""
    root = tmp_path_factory.mktemp("runs")
    sweep = root / "sweep"
    common = [SEARCHPATH, "model=replay", "eval.n_at_end=100", "eval.every_n_epochs=1", "eval.n_during=40"]
    return {
        "data": make_run(sweep / "0_model.mode=data", [*common, "model.mode=data"], eval_cache),
        "noise": make_run(sweep / "1_model.mode=noise", [*common, "model.mode=noise"], eval_cache),
        "sweep": sweep,
        "cnn16": make_run(root / "cnn16", ["model=cnn", "data.image_size=16", "model.net.widths=[8,16]"], eval_cache),
    }


@pytest.fixture(scope="session")
def inception_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torch-fidelity's Inception-v3 with random (kaiming) weights, saved as a state_dict (~96 MB)."""
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
    path = tmp_path_factory.mktemp("inception") / "weights-inception-random.pth"
    torch.save(net.state_dict(), path)
    return path
