"""Tiny run folders of a held-out-class study (digits 5-9 held out, 16 px), built once per test process."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import compose_config
from eval_fixtures import TINY_CLASSIFIER, make_run, once

HELD = "data.heldout_classes=[5,6,7,8,9]"
SEEN = [HELD, "data.classes=seen", "data.num_classes=5"]
# The few-shot classifier: the held-out digits, k images each.
HELDOUT_CNN = [
    "model=cnn",
    "model.net.widths=[8,16]",
    "logger=none",
    "test=false",
    HELD,
    "data.classes=heldout",
    "data.num_classes=5",
    "data.image_size=16",
    *TINY_CLASSIFIER,
]
TINY_DIFFUSION = [
    "schedule.timesteps=10",
    "data.image_size=16",
    "model.net.base_channels=8",
    "model.net.channel_mults=[1,2]",
    "model.net.attention_resolutions=[]",
    "callbacks.diffusion_viz=null",
    "logger=none",
]
TINY_DAGAN = ["model=dagan", "data.image_size=16", "model.generator.ngf=8", "model.discriminator.ndf=8", "logger=none"]
# Inversion settings small enough for a test: (options, settings) of genlab.tasks.invert.invert_run.
INVERT_OPTIONS = {"steps": 3, "lr": 0.05, "batch_size": 4, "vectors": 1, "seed": 0, "subset_seed": None}


@once
def fewshot_runs(factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders trained on the seen digits 0-4 (``cddpm``, ``ddpm`` unconditional, ``dagan``) and a cddpm of
    every digit (``cddpm_all``), with their shared cache."""
    root = factory.mktemp("fewshot")
    cache = root / "cache"
    return {
        "root": root,
        "cache": cache,
        "cddpm": make_run(root / "cddpm", ["model=cddpm", *TINY_DIFFUSION, *SEEN], cache),
        "cddpm_all": make_run(root / "cddpm_all", ["model=cddpm", *TINY_DIFFUSION], cache),
        "ddpm": make_run(root / "ddpm", ["model=ddpm", *TINY_DIFFUSION, *SEEN], cache),
        "dagan": make_run(root / "dagan", [*TINY_DAGAN, *SEEN], cache),
    }


def invert_settings(cache: Path) -> dict:
    """``settings`` of ``invert_run`` for tests: CPU, no class-accuracy check, 2-step DDIM grid."""
    cfg = compose_config("invert", ["run=x", "classes=[5]", *TINY_CLASSIFIER], cache / "unused")
    return {
        "device": "cpu",
        "n_eval": 0,
        "cache_dir": str(cache),
        "eval": cfg.eval,
        "sample_options": {"sampler": "ddim", "steps": 2},
    }
