"""Bad input to `genlab sample mask=...`: one short message naming the option, exit 2, no traceback, and no
run folder changed. The CLI calls run two at a time in a module fixture; each case checks its own result."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from eval_fixtures import make_run, once
from PIL import Image
from refusals import assert_refused, tree

TINY_DDPM = [
    "model=cddpm",
    "data.image_size=16",
    "schedule.timesteps=20",
    "model.net.base_channels=8",
    "model.net.channel_mults=[1,2]",
    "model.net.attention_resolutions=[]",
    "callbacks.diffusion_viz=null",
    "logger=none",
    "eval.n_at_end=0",
]
GAN = ["model=gan", "data.image_size=16", "model.generator.hidden=[32]", "model.discriminator.hidden=[32]"]
PIX2PIX = ["model=pix2pix", "data=edges2digits", "model.generator.ngf=8", "model.discriminator.ndf=8"]
FAST_SAMPLER = ["sampler=ddim", "steps=4"]
ON_TEST = ["run=CDDPM", "split=test", "n=2", *FAST_SAMPLER]

# The list, on the command line: (sample overrides, text the message must contain); CDDPM/GAN/PIX2PIX
# are runs, the rest files made below.
CASES = {
    "missing mask file": ([*ON_TEST, "mask=MISSING"], "no such file"),
    "mask of another aspect ratio": ([*ON_TEST, "mask=WIDE"], "not square"),
    "all-black mask": ([*ON_TEST, "mask=BLACK"], "is all black: nothing to regenerate"),
    "jump below 1": ([*ON_TEST, "mask=center", "jump=0"], "jump=0 must be an integer ≥ 1"),
    "resample below 1": ([*ON_TEST, "mask=center", "resample=0"], "resample=0 must be an integer ≥ 1"),
    "mask on a GAN run": (["run=GAN", "split=test", "mask=center"], "RePaint needs a diffusion run"),
    "mask on a pix2pix run": (["run=PIX2PIX", "split=test", "mask=center"], "RePaint needs a diffusion run"),
    "label out of range": ([*ON_TEST, "mask=center", "label=10"], "label=10 is out of range"),
}
# More mistakes, checked in-process (the command's function raises the message that the CLI prints).
MORE = {
    "a multistep sampler": (
        ["run=CDDPM", "split=test", "mask=center", "sampler=dpm_solver", "steps=4"],
        "cannot inpaint",
    ),
    "a jump longer than the walk": ([*ON_TEST, "mask=center", "jump=4", "resample=2"], "jump=4 must be smaller"),
    "a folder of masks with split=": ([*ON_TEST, "mask=MASKDIR"], "paired with input= images"),
    "an input without its mask": (["run=CDDPM", "input=INPUTS", "mask=MASKDIR"], "no mask for 1 input image"),
    "an unknown mask kind": ([*ON_TEST, "mask=circle"], "neither a mask kind nor an existing file"),
    "mask_size of another kind": ([*ON_TEST, "mask=strokes", "mask_size=0.3"], "mask_size=0.3 sets the side"),
    "strength with a mask": ([*ON_TEST, "mask=center", "strength=0.5"], "strength=0.5 is SDEdit's option"),
    "no images to inpaint": (["run=CDDPM", "mask=center"], "add input=PATH"),
    "jump without a mask": ([*ON_TEST, "jump=5"], "applies to inpainting: add mask="),
}
# This one succeeds: it runs on a copy of the run, so the refused cases' run folders stay as they were.
WHITE = (
    ["run=WRITABLE", "split=test", "n=2", *FAST_SAMPLER, "mask=WHITE", "resample=1"],
    "all white: nothing is kept, the same as sampling from scratch",
)


@once
def _setup(factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The runs (CDDPM, GAN, PIX2PIX, a WRITABLE copy of CDDPM) and mask/input files the cases name."""
    root = factory.mktemp("inpaint_refusals")
    cache = root / "cache"
    runs = {
        "CDDPM": make_run(root / "runs" / "cddpm", TINY_DDPM, cache),
        "GAN": make_run(root / "runs" / "gan", [*GAN, "logger=none"], cache),
        "PIX2PIX": make_run(root / "runs" / "pix2pix", [*PIX2PIX, "logger=none"], cache),
    }
    writable = root / "runs" / "writable"
    shutil.copytree(runs["CDDPM"], writable)
    files = {
        "WRITABLE": writable,
        "MISSING": root / "no_such_mask.png",
        "MASKDIR": root / "masks",
        "INPUTS": root / "inputs",
    }
    for name, (height, width, value) in {"WIDE": (10, 20, 255), "BLACK": (16, 16, 0), "WHITE": (16, 16, 255)}.items():
        files[name] = root / f"{name.lower()}.png"
        Image.fromarray(np.full((height, width), value, np.uint8)).save(files[name])
    files["MASKDIR"].mkdir()
    files["INPUTS"].mkdir()
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(files["MASKDIR"] / "a.png")
    for name in ("a", "b"):
        Image.fromarray(np.full((16, 16), 90, np.uint8)).save(files["INPUTS"] / f"{name}.png")
    return {**runs, **files, "ROOT": root, "CACHE": cache}


@once
def _results(factory: pytest.TempPathFactory) -> dict:
    paths = _setup(factory)
    runs = [paths["CDDPM"], paths["GAN"], paths["PIX2PIX"]]
    before = tree(runs)
    cases = {**CASES, "all-white mask": WHITE}

    def call(name: str):
        args = ["sample", *cases[name][0]]
        for key, path in paths.items():
            args = [a.replace(f"={key}", f"={path}") for a in args]
        cwd = paths["ROOT"] / "cwd" / name.replace(" ", "_")
        cwd.mkdir(parents=True)
        return run_cli(args, cwd, timeout=300, env={"GENLAB_CACHE_DIR": str(paths["CACHE"])})

    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(cases, pool.map(call, cases), strict=True))
    return {"results": done, "before": before, "runs": runs, "writable": paths["WRITABLE"]}


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _setup(tmp_path_factory)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _results(tmp_path_factory)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_bad_inpainting_input_is_refused_cleanly(results, case):
    result = results["results"][case]
    assert_refused(result, CASES[case][1], results["before"], results["runs"])


@pytest.mark.slow
def test_an_all_white_mask_inpaints_and_says_it_is_sampling_from_scratch(results):
    result = results["results"]["all-white mask"]
    assert result.returncode == 0, result.stderr[-2000:]
    assert WHITE[1] in result.stdout + result.stderr
    written = [Path(line) for line in result.stdout.splitlines() if line.endswith((".png", ".json"))]
    assert [p.name for p in written] == ["grid.png", "metrics.json"]
    assert all(p.is_relative_to(results["writable"] / "sample") for p in written)


@pytest.mark.parametrize("case", list(MORE))
def test_more_inpainting_mistakes_are_refused_by_name(paths, case, tmp_path):
    from conftest import compose_config

    from genlab.errors import GenlabError
    from genlab.tasks.sample import sample

    args = MORE[case][0]
    for key, path in paths.items():
        args = [a.replace(f"={key}", f"={path}") for a in args]
    cfg = compose_config("sample", ["device=cpu", *args], tmp_path / "out")
    with pytest.raises(GenlabError) as caught:
        sample(cfg)
    assert MORE[case][1] in str(caught.value)
