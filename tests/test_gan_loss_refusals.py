"""Spectral norm and hinge loss refused where they cannot apply (``genlab train``): exit 2, one short
message naming the option, no traceback, no run folder left behind. CLI calls two at a time."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import run_cli
from refusals import assert_refused

pytestmark = pytest.mark.slow

# (arguments, text the message must contain)
CASES = {
    "spectral norm with BatchNorm": (
        ["train", "model=dcgan", "model.discriminator.spectral_norm=true"],
        "set model.discriminator.batch_norm=false",
    ),
    "spectral norm on a head without layers": (
        ["train", "model=dcgan", "model/loss=hinge_sn", "model.discriminator.head._target_=torch.nn.Identity"],
        "the head Identity has no Linear, Conv2d or Embedding layer",
    ),
    "spectral norm on the PatchGAN": (
        ["train", "model=pix2pix", "data=edges2digits", "model.discriminator.spectral_norm=true"],
        "model.discriminator.spectral_norm is not an option",
    ),
    "hinge loss with the K+1 head": (
        ["train", "model=cgan", "model/head=multiclass", "model/loss=hinge"],
        "use model/head=realfake with model/loss=hinge",
    ),
    "SN-GAN preset with the K+1 head": (
        ["train", "model=cgan", "model/head=multiclass", "model/loss=hinge_sn"],
        "model/loss=hinge expects 1 logit(s) per image",
    ),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("gan_loss_refusals")

    def call(name: str):
        cwd = root / name.replace(" ", "_")
        cwd.mkdir()
        return run_cli(CASES[name][0], cwd, timeout=180)

    with ThreadPoolExecutor(2) as pool:
        return root, dict(zip(CASES, pool.map(call, CASES), strict=True))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_gan_loss_input_is_refused_cleanly(results, case):
    root, done = results
    assert_refused(done[case], CASES[case][1])
    runs = root / case.replace(" ", "_") / "outputs" / "train"
    assert not runs.exists() or not any(runs.iterdir()), "a refused train left a run folder"
