"""Bad input to the held-out-class study on the command line: exit 2, one short message naming the option,
no traceback, no run folder left behind and nothing in the existing runs changed. The CLI calls run two
at a time in a module fixture; each case then checks its own result."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import FAST, run_cli
from eval_fixtures import TINY_CLASSIFIER, cli_env
from fewshot_fixtures import HELDOUT_CNN, fewshot_runs
from refusals import assert_refused, tree

CNN = ["train", *FAST, "model=cnn", "data.image_size=16", "logger=none"]
HELDOUT = ["train", *FAST, *HELDOUT_CNN]
INVERT = ["invert", "run=CDDPM", "steps=1", "n_eval=0"]
# (arguments with run placeholders, text the message must contain)
CASES = {
    "heldout class the dataset lacks": (
        [*CNN, "data.heldout_classes=[5,12]", "data.classes=heldout", "data.num_classes=2"],
        "names class 12, which data=digits does not have",
    ),
    "every class held out": (
        [*CNN, "data.heldout_classes=[0,1,2,3,4,5,6,7,8,9]", "data.classes=seen"],
        "holds out every class",
    ),
    "k larger than a class": ([*HELDOUT, "data.train_per_class=500"], "data.train_per_class=500 is larger than"),
    "invert k larger than a class": ([*INVERT, "classes=[5,6]", "k=500"], "k=500 is larger than"),
    "invert an unconditional run": (["invert", "run=DDPM", "classes=[5]"], "class-conditional diffusion"),
    "invert a non-diffusion run": (["invert", "run=DAGAN", "classes=[5]"], "class-conditional diffusion"),
    "invert known classes": ([*INVERT, "classes=[3,5]"], "trained on class 3 already"),
    "invert a class the dataset lacks": ([*INVERT, "classes=[5,12]", "k=1"], "names class 12"),
    "da_fusion from a run that was not inverted": (
        [*HELDOUT, "data.train_per_class=2", "augment=da_fusion", "augment.source=CDDPM"],
        "was not inverted",
    ),
    "dagan from a run that is not a DAGAN": (
        [*HELDOUT, "data.train_per_class=2", "augment=dagan", "augment.source=CDDPM"],
        "needs a DAGAN run (model=dagan)",
    ),
    "a generator that saw a held-out class": (
        [*HELDOUT, "data.train_per_class=2", "augment=sdedit_null", "augment.source=CDDPMALL"],
        "was trained on class 5, which this study holds out",
    ),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    fewshot = fewshot_runs(tmp_path_factory)
    root = tmp_path_factory.mktemp("fewshot_refusals")
    names = {"CDDPMALL": "cddpm_all", "CDDPM": "cddpm", "DDPM": "ddpm", "DAGAN": "dagan"}
    runs = [fewshot[name] for name in names.values()]
    before = tree(runs)

    def call(case: str):
        args = list(CASES[case][0])
        for placeholder, name in names.items():
            args = [a.replace(f"={placeholder}", f"={fewshot[name]}") for a in args]
        if args[0] == "invert":
            args += TINY_CLASSIFIER
        cwd = root / case.replace(" ", "_")
        cwd.mkdir()
        return run_cli(args, cwd, timeout=300, env=cli_env(fewshot["cache"]))

    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(CASES, pool.map(call, CASES), strict=True))
    return {"results": done, "before": before, "runs": runs, "root": root}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_fewshot_input_is_refused_cleanly(results, case):
    assert_refused(results["results"][case], CASES[case][1])
    outputs = results["root"] / case.replace(" ", "_") / "outputs"
    left = [p for p in outputs.glob("*/*") if p.is_dir()] if outputs.is_dir() else []
    assert not left, f"a refused command left run folders: {left}"


def test_no_existing_run_changed(results):
    assert tree(results["runs"]) == results["before"]
