"""Bad input to every command: exit ≠ 0, a short message naming the option, no traceback, and no
existing run folder changed. Includes crafted checkpoints whose pickled payload must not run.

The CLI calls (≈ 3 s of imports each) run two at a time in a module fixture; each case then checks
its own result.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config, run_cli
from omegaconf import OmegaConf
from PIL import Image
from refusals import assert_refused, tree

from genlab.tasks.train import train

MARKER = "payload_ran"


class _Payload:
    """Unpickling this calls os.system: a weights-only loader must refuse it."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


# (command and overrides, text the message must contain). GOOD/CORRUPT/EVIL: run folders; NOTRUN: a plain folder.
CASES = {
    "unknown key": (["train", "modle=gan"], "modle"),
    "unknown group option": (["train", "model=nosuch"], "model=nosuch"),
    "wrong type": (["train", "trainer.max_epochs=abc"], "trainer.max_epochs"),
    "out of range": (["train", "data.batch_size=-1"], "data.batch_size"),
    "missing dataset files": (["train", "data=mnist", "data.download=false"], "data.download=false"),
    "pix2pix on digits": (["train", "model=pix2pix"], "model=pix2pix"),
    "cgan on unlabelled data": (["train", "model=cgan", "data=image_folder", "data.root=FLAT"], "num_classes=0"),
    "ddpm with a uniform prior": (["train", "model=ddpm", "noise_dist=uniform"], "noise_dist=uniform"),
    "resume of a non-run": (["train", "resume=NOTRUN"], "resume="),
    "resume of a crafted checkpoint": (["train", "resume=EVIL"], "refused to load"),
    "sample n=0": (["sample", "run=GOOD", "n=0"], "n=0"),
    "label on an unconditional model": (["sample", "run=GOOD", "label=3"], "label=3"),
    "corrupt checkpoint": (["sample", "run=CORRUPT"], "corrupt"),
    "sample of a crafted checkpoint": (["sample", "run=EVIL"], "refused to load"),
    "unknown feature network": (["eval", "run=GOOD", "features=nosuch"], "features=nosuch"),
    "augment n=0": (["augment", "n=0"], "n=0"),
    # first-run mistakes: advice instead of Hydra's or torch's report
    "typo in a key": (["train", "trainer.max_epoch=3"], "did you mean trainer.max_epochs"),
    "a bare learning rate": (["train", "lr=0.01"], "model.optimizer_g.lr"),
    "a negative learning rate": (["train", "model.optimizer_g.lr=-0.01"], "Invalid learning rate: -0.01"),
    "3 channels on grey digits": (["train", "data.channels=3"], "keep data.channels=1"),
    "5 classes on 10-class data": (["train", "model=cgan", "model.num_classes=5"], "keep model.num_classes"),
    "an output root that cannot be written": (["train", "paths.output_root=/proc/genlab"], "cannot be written"),
    "a corrupt image in a folder": (
        ["train", "model=dcgan", "data=image_folder", "data.root=BROKENIMAGES", "data.image_size=8", *FAST],
        "cannot be read",
    ),
    "resume of a complete run": (["train", "resume=GOOD"], "already complete"),
    "an unknown sample format": (["sample", "run=GOOD", "format=jpg"], "format=jpg"),
    "another model's sampling option": (["sample", "run=GOOD", "steps=5"], "steps=5 is not an option"),
    "a typo in an eval option": (["eval", "run=GOOD", "featurs=classifier"], "did you mean features"),
}
if not torch.cuda.is_available():
    CASES["a GPU trainer without a GPU"] = (["train", "trainer=gpu"], "needs a CUDA GPU")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every case once (two at a time) against one tiny trained run and its broken copies."""
    root = tmp_path_factory.mktemp("bad_input")
    good = root / "runs" / "good"
    cfg = compose_config(
        "train", ["model.generator.hidden=[32]", "model.discriminator.hidden=[32]", *FAST, "logger=none"], good
    )
    train(cfg)
    (good / ".hydra").mkdir()
    OmegaConf.save(cfg, good / ".hydra" / "config.yaml")
    corrupt, evil = root / "runs" / "corrupt", root / "runs" / "evil"
    shutil.copytree(good, corrupt)
    shutil.copytree(good, evil)
    last = corrupt / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    checkpoint = torch.load(good / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["hook"] = _Payload(f"touch {root / MARKER}")
    torch.save(checkpoint, evil / "checkpoints" / "last.ckpt")
    (root / "notrun").mkdir()
    flat = root / "flat"
    flat.mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (60 * i, 0, 0)).save(flat / f"{i}.png")
    corrupt_folder = root / "corrupt_folder"
    shutil.copytree(flat, corrupt_folder)
    for i in range(4, 12):
        (corrupt_folder / f"{i}.png").write_bytes(b"not an image")
    (root / "data").mkdir()
    paths = {"GOOD": good, "CORRUPT": corrupt, "EVIL": evil, "NOTRUN": root / "notrun", "FLAT": flat}
    paths["BROKENIMAGES"] = corrupt_folder

    runs = [good, corrupt, evil]
    before = tree(runs)

    def call(name: str):
        args = CASES[name][0]
        for key, path in paths.items():
            args = [a.replace(f"={key}", f"={path}") for a in args]
        cwd = root / "cwd" / name.replace(" ", "_")
        cwd.mkdir(parents=True)
        return run_cli(args, cwd, timeout=120, env={"GENLAB_DATA_DIR": str(root / "data")})

    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(CASES, pool.map(call, CASES), strict=True))
    return {"results": done, "before": before, "after": tree(runs), "runs": runs, "root": root}


def left_run_folders(root: Path, case: str) -> list[Path]:
    folder = root / "cwd" / case.replace(" ", "_") / "outputs" / "train"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_cleanly(results, case):
    assert_refused(results["results"][case], CASES[case][1])
    assert not left_run_folders(results["root"], case), "a train that failed before its first step left a run folder"


@pytest.mark.slow
def test_no_file_appeared_changed_or_vanished_in_a_run_folder_and_no_payload_ran(results):
    assert not (results["root"] / MARKER).exists()
    assert results["after"] == results["before"]
