"""Bad objective and sampler input on the command line (exit 2, one message, no traceback, no folder changed), and
a v-prediction run sampled by the CLI, which reads the prediction type from the run's config. (The other bad
objectives are refused in-process in test_objectives.py, the samplers' own limits in their tests.)"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import FAST, TINY_DDPM, compose_config, run_cli
from omegaconf import OmegaConf
from refusals import assert_refused, tree

from genlab.tasks.train import train

TRAIN = ["train", "model=ddpm", *TINY_DDPM, *FAST]
# (command and overrides with RUN for the v-prediction run, text the message must contain)
CASES = {
    "sampled as another prediction type": (
        ["sample", "run=RUN", "n=2", "prediction=eps"],
        "prediction=eps contradicts this run: its net was trained with model.prediction=v",
    ),
    "Heun below 3 NFE": (["sample", "run=RUN", "n=2", "sampler=heun", "steps=2"], "the Heun sampler needs steps ≥ 3"),
    "DPM-Solver++ below 2 NFE": (
        ["sample", "run=RUN", "n=2", "sampler=dpm_solver", "steps=1"],
        "DPM-Solver++ 2M needs steps ≥ 2",
    ),
    "an unknown prediction type": (
        [*TRAIN, "model.prediction=score"],
        "model.prediction=score is not a prediction type",
    ),
    "min-SNR with gamma 0": (
        [*TRAIN, "model.loss_weighting=min_snr", "model.min_snr_gamma=0"],
        "model.min_snr_gamma=0 must be a number > 0",
    ),
}
GOOD = ["sample", "run=RUN", "n=4", "prediction=v", "sampler=dpm_solver", "steps=4"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A tiny v-prediction run; every case and one good sample call, two CLI calls at a time."""
    root = tmp_path_factory.mktemp("objectives_cli")
    run = root / "run"
    cfg = compose_config("train", [*TRAIN[1:], "model.prediction=v", "logger=none"], run)
    train(cfg)
    (run / ".hydra").mkdir()
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    before = tree([run])

    def call(name: str):
        args = [a.replace("=RUN", f"={run}") for a in (GOOD if name == "good" else CASES[name][0])]
        cwd = root / "cwd" / name.replace(" ", "_")
        cwd.mkdir(parents=True)
        return run_cli(args, cwd, timeout=300)

    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(CASES, pool.map(call, CASES), strict=True))
    after = tree([run])
    return {"done": done, "good": call("good"), "before": before, "after": after, "run": run, "root": root}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_with_one_message(results, case):
    assert_refused(results["done"][case], CASES[case][1])
    left = results["root"] / "cwd" / case.replace(" ", "_") / "outputs" / "train"
    assert not (left.is_dir() and any(left.iterdir())), "a refused train left a run folder"


def test_no_refused_command_changed_the_run_folder(results):
    assert results["after"] == results["before"]


def test_the_run_samples_with_its_own_prediction_type(results):
    assert results["good"].returncode == 0, results["good"].stderr[-2000:]
    [grid] = list(Path(results["run"]).glob("sample/*/grid.png"))
    assert grid.stat().st_size > 0
    config = OmegaConf.load(results["run"] / ".hydra" / "config.yaml")
    assert config.model.prediction == "v"
