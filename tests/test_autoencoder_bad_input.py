"""Bad input of the autoencoders (issue 22), through the CLI: exit 2, one short message naming the option, no
traceback, no run folder left or changed. (The comparison's unusable arm is skipped, not refused:
tests/test_model_comparison.py; the other refusals of the autoencoders are checked in-process in test_dae.py and
test_vae.py.) The CLI calls (≈ 8 s of CPU each) run two at a time in a module fixture."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import run_cli
from eval_fixtures import make_run
from refusals import assert_refused, tree

TINY = ["data.image_size=16", "logger=none"]
CASES = {
    "negative noise factor": (["train", "model=dae", "model.noise_factor=-0.1"], "model.noise_factor=-0.1 must be"),
    "negative beta": (["train", "model=vae", "model.beta=-1"], "model.beta=-1 must be >= 0"),
    "label on an unconditional VAE": (["sample", "run=VAE", "label=3"], "label=3 was given, but model=vae"),
    "interpolate with n < 2": (["sample", "run=VAE", "interpolate=true", "n=1"], "n=1: interpolate=true needs n >= 2"),
    "encoded interpolation with n < 2": (["sample", "run=VAE", "interpolate=test", "n=1"], "interpolate=test needs"),
    "negative noise factor at sampling": (["sample", "run=DAE", "noise_factor=-0.2"], "noise_factor=-0.2 must be"),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("autoencoder_bad_input")
    runs = {
        "VAE": make_run(root / "runs" / "vae", ["model=vae", *TINY, "model.encoder.ndf=8"], root / "cache"),
        "DAE": make_run(root / "runs" / "dae", ["model=dae", *TINY, "model.net.widths=[8]"], root / "cache"),
    }
    before = tree(runs.values())

    def call(name: str):
        args = CASES[name][0]
        for key, path in runs.items():
            args = [a.replace(f"={key}", f"={path}") for a in args]
        cwd = root / "cwd" / name.replace(" ", "_")
        cwd.mkdir(parents=True)
        return run_cli(args, cwd, timeout=180)

    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(CASES, pool.map(call, CASES), strict=True))
    return {"results": done, "before": before, "after": tree(runs.values()), "root": root}


def left_run_folders(root: Path, case: str) -> list[Path]:
    folder = root / "cwd" / case.replace(" ", "_") / "outputs" / "train"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_cleanly(results, case):
    assert_refused(results["results"][case], CASES[case][1])
    assert not left_run_folders(results["root"], case), "a refused train left a run folder"


@pytest.mark.slow
def test_no_refused_command_changed_a_run_folder(results):
    assert results["after"] == results["before"]
