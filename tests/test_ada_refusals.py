"""DiffAugment where it cannot apply and bad ADA input to ``genlab train``: exit 2, one short message
naming the option, no traceback, no run folder left behind. The CLI calls run two at a time in a module fixture."""

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
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("ada_refusals")

    def call(name: str):
        cwd = root / name.replace(" ", "_")
        cwd.mkdir()
        return run_cli(CASES[name][0], cwd, timeout=180)

    with ThreadPoolExecutor(2) as pool:
        return root, dict(zip(CASES, pool.map(call, CASES), strict=True))


@pytest.mark.parametrize("case", list(CASES))
def test_misplaced_diffaug_and_bad_ada_input_is_refused_cleanly(results, case):
    root, done = results
    assert_refused(done[case], CASES[case][1])
    runs = root / case.replace(" ", "_") / "outputs" / "train"
    assert not runs.exists() or not any(runs.iterdir()), "a refused train left a run folder"
