"""Bad small-data GAN input to ``genlab train`` (DiffAugment policies, strengths and p; ADA; spectral norm and
hinge loss where they cannot apply): exit 2, one short message naming the option, no traceback, no run folder
left behind. The CLI calls run two at a time in a module fixture."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import run_cli
from refusals import assert_refused

pytestmark = pytest.mark.slow

DCGAN = ["train", "model=dcgan"]
# (arguments, text the message must contain)
CASES = {
    "unknown policy": ([*DCGAN, "model.diffaug=translate"], "unknown DiffAugment policy ['translate']"),
    "unknown policy in a list": ([*DCGAN, "model.diffaug=translation,zoom"], "['zoom']"),
    "strength out of range": ([*DCGAN, "model.diffaug=cutout", "model.diffaug_cutout_ratio=1.5"], "cutout_ratio=1.5"),
    "p out of range": ([*DCGAN, "model.diffaug=cutout", "model.diffaug_p=1.5"], "model.diffaug_p=1.5 is out of range"),
    "p neither a number nor adaptive": ([*DCGAN, "model.diffaug=cutout", "model.diffaug_p=often"], "or adaptive"),
    "p without a policy": ([*DCGAN, "model.diffaug_p=adaptive"], "model.diffaug is null"),
    "ADA target out of range": (
        [*DCGAN, "model.diffaug=cutout", "model.diffaug_p=adaptive", "model.ada_target=1"],
        "model.ada_target=1",
    ),
    "diffaug on the CNN": (["train", "model=cnn", "model.diffaug=translation"], "model=cnn has no discriminator"),
    "diffaug on DDPM": (["train", "model=ddpm", "model.diffaug=translation"], "model=ddpm has no discriminator"),
    "adaptive p with the WGAN critic": (
        [*DCGAN, "model/loss=wgan_gp", "model.diffaug=translation", "model.diffaug_p=adaptive"],
        "model/loss=wgan_gp the critic's value has no fixed zero",
    ),
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
    root = tmp_path_factory.mktemp("small_data_gan_refusals")

    def call(name: str):
        cwd = root / name.replace(" ", "_")
        cwd.mkdir()
        return run_cli(CASES[name][0], cwd, timeout=180)

    with ThreadPoolExecutor(2) as pool:
        return root, dict(zip(CASES, pool.map(call, CASES), strict=True))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_small_data_gan_input_is_refused_cleanly(results, case):
    root, done = results
    assert_refused(done[case], CASES[case][1])
    runs = root / case.replace(" ", "_") / "outputs" / "train"
    assert not runs.exists() or not any(runs.iterdir()), "a refused train left a run folder"
