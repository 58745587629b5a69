"""Bad DiffAugment input to ``genlab train`` (policies, strengths, p): exit 2, one short message
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
    "unknown policy": ([*DCGAN, "model.diffaug=translate"], "unknown DiffAugment policy ['translate']"),
    "unknown policy in a list": ([*DCGAN, "model.diffaug=translation,zoom"], "['zoom']"),
    "strength out of range": ([*DCGAN, "model.diffaug=cutout", "model.diffaug_cutout_ratio=1.5"], "cutout_ratio=1.5"),
    "p out of range": ([*DCGAN, "model.diffaug=cutout", "model.diffaug_p=1.5"], "model.diffaug_p=1.5 is out of range"),
    "p neither a number nor adaptive": ([*DCGAN, "model.diffaug=cutout", "model.diffaug_p=often"], "or adaptive"),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("diffaug_refusals")

    def call(name: str):
        cwd = root / name.replace(" ", "_")
        cwd.mkdir()
        return run_cli(CASES[name][0], cwd, timeout=180)

    with ThreadPoolExecutor(2) as pool:
        return root, dict(zip(CASES, pool.map(call, CASES), strict=True))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_diffaug_input_is_refused_cleanly(results, case):
    root, done = results
    assert_refused(done[case], CASES[case][1])
    runs = root / case.replace(" ", "_") / "outputs" / "train"
    assert not runs.exists() or not any(runs.iterdir()), "a refused train left a run folder"
