"""CycleGAN end to end on one tiny trained run: the per-epoch grids, ``genlab sample`` in both
directions and on the user's images, ``genlab eval`` of both directions, and every bad input."""

from __future__ import annotations

import json
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config, run_cli
from eval_fixtures import TINY_CLASSIFIER, eval_cache, make_run  # noqa: F401
from fixture_data import write_unpaired
from PIL import Image
from refusals import assert_refused, tree

from genlab.build import instantiate_datamodule
from genlab.imaging import to_uint8, to_unit_range
from genlab.tasks.eval import evaluate
from genlab.tasks.sample import sample

TINY = [
    "model=cyclegan",
    "data=unpaired_edges2digits",
    "model.generator.ngf=4",
    "model.generator.n_blocks=1",
    "model.discriminator.ndf=4",
    "model.discriminator.n_layers=2",
    "data.batch_size=4",
    "logger=none",
]


@pytest.fixture(scope="module")
def run_dir(eval_cache, tmp_path_factory) -> Path:  # noqa: F811
    """One tiny CycleGAN run on unpaired_edges2digits (2 generator updates)."""
    return make_run(tmp_path_factory.mktemp("cyclegan") / "run", TINY, eval_cache)


@pytest.fixture(scope="module")
def test_split(run_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 6 test images of each domain (true pairs)."""
    cfg = compose_config("train", TINY, run_dir.parent / "unused")
    return instantiate_datamodule(cfg, train=False).fixed_pairs("test", 6)


def tile(grid: np.ndarray, row: int, column: int, size: int = 32, pad: int = 2) -> np.ndarray:
    """Image (row, column) of a torchvision grid, as floats in [0, 1] (first channel)."""
    top, left = pad + row * (size + pad), pad + column * (size + pad)
    return grid[top : top + size, left : left + size, 0] / 255


def test_each_epoch_writes_a_and_b_triples(run_dir):
    cfg = compose_config("train", TINY, run_dir.parent / "unused")
    a, b = instantiate_datamodule(cfg, train=False).fixed_pairs("val", 8)
    grid = np.asarray(Image.open(run_dir / "samples" / "epoch_0001.png").convert("RGB"))
    # 16 triples, two a row: rows 0-3 hold A | G(A) | F(G(A)), rows 4-7 B | F(B) | G(F(B))
    assert grid.shape[:2] == (2 + 8 * 34, 2 + 6 * 34)
    assert np.abs(tile(grid, 0, 0) - to_unit_range(a[0, 0]).numpy()).max() < 1 / 255 + 1e-6
    assert np.abs(tile(grid, 0, 3) - to_unit_range(a[1, 0]).numpy()).max() < 1 / 255 + 1e-6
    assert np.abs(tile(grid, 4, 0) - to_unit_range(b[0, 0]).numpy()).max() < 1 / 255 + 1e-6
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and 0 <= metrics["test/cycle_l1_A"] <= 2


def sample_in_process(run_dir: Path, tmp_path: Path, *overrides: str) -> Path:
    out = tmp_path / "sample"
    sample(compose_config("sample", [f"run={run_dir}", *overrides], out))
    return out


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_sample_translates_test_rows_in_either_direction(run_dir, test_split, tmp_path, direction):
    out = sample_in_process(run_dir, tmp_path, "n=6", "format=npz", f"direction={direction}")
    arrays = np.load(out / "samples.npz")
    assert sorted(arrays) == ["images", "inputs", "reconstructions", "targets"]
    a, b = (to_uint8(x).numpy() for x in test_split)  # the npz holds uint8 images
    source, target = (a, b) if direction == "AtoB" else (b, a)
    assert np.array_equal(arrays["inputs"], source) and np.array_equal(arrays["targets"], target)
    assert arrays["images"].shape == arrays["reconstructions"].shape == (6, 1, 32, 32)
    assert Image.open(out / "grid.png").size == (2 + 4 * 34, 2 + 6 * 34)  # a row per input: 4 columns


def test_sample_input_converts_other_channel_counts_with_a_note(run_dir, tmp_path, caplog):
    folder = tmp_path / "mine"
    folder.mkdir()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(folder / "photo.png")
    Image.fromarray(np.full((32, 32), 255, np.uint8)).save(folder / "sketch.png")
    with caplog.at_level(logging.WARNING, logger="genlab"):
        out = sample_in_process(run_dir, tmp_path, f"input={folder}", "direction=BtoA")
    assert "converted 1 input image(s) to 1 channel(s), the source domain of direction=BtoA: photo.png (3)" in (
        caplog.text
    )
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "photo.png", "sketch.png"]
    translated = np.asarray(Image.open(out / "photo.png").convert("RGB"))
    assert translated.shape == (32, 32, 3) and (translated == translated[..., :1]).all()  # a grey image of domain A


def test_eval_scores_both_directions_against_the_true_pairs(run_dir, eval_cache, tmp_path):  # noqa: F811
    cfg = compose_config("eval", [f"run={run_dir}", *TINY_CLASSIFIER], tmp_path / "eval")
    cfg.paths.cache_dir = str(eval_cache)
    metrics = evaluate(cfg)["metrics"]
    assert metrics["model"] == "cyclegan" and metrics["true_pairs"] is True
    assert (metrics["n"], metrics["n_B"], metrics["split"]) == (359, 359, "test")
    assert metrics["features"] == "classifier" and metrics["feature_data"] == "digits"
    for key in ("fid", "fid_BtoA"):
        assert np.isfinite(metrics[key]) and metrics[key] > 0
    for key in ("l1", "l1_BtoA", "cycle_l1_A", "cycle_l1_B"):
        assert 0 < metrics[key] < 2
    assert 0 <= metrics["class_acc"] <= 1 and -1 <= metrics["ssim"] <= 1
    assert (run_dir / "eval").is_dir()


# ----------------------------------------------------------------------------- bad input
def _missing_train_b(root: Path) -> list[str]:
    shutil.rmtree(write_unpaired(root) / "trainB")
    return [f"data.root={root}"]


def _empty_domain(root: Path) -> list[str]:
    for path in (write_unpaired(root) / "testA").iterdir():
        path.unlink()
    return [f"data.root={root}"]


FOLDER = ["data=unpaired_folder", "data.image_size=32", "data.load_size=36", "data.num_workers=0"]
CASES = {
    "unpaired folder without trainB": (["train", *TINY, *FOLDER, _missing_train_b], "root/trainB is missing"),
    "unpaired folder with an empty domain": (["train", *TINY, *FOLDER, _empty_domain], "root/testA holds no images"),
    "paired data": (["train", *TINY, "data=edges2digits"], "data=edges2digits has paired data"),
    "a class dataset": (["train", *TINY, "data=digits"], "data=digits has no domains"),
    "a negative cycle weight": (["train", *TINY, "model.lambda_cyc=-1"], "model.lambda_cyc=-1 must be >= 0"),
    "a negative identity weight": (["train", *TINY, "model.lambda_identity=-0.5"], "model.lambda_identity=-0.5"),
    "an unknown direction": (["sample", "run=RUN", "direction=CtoD"], "direction=CtoD is not one of AtoB, BtoA"),
}


@pytest.mark.slow
def test_bad_input_is_refused_cleanly(run_dir, tmp_path):
    before = tree([run_dir])

    def call(name: str):
        cwd = tmp_path / name.replace(" ", "_")
        args = []
        for arg in CASES[name][0]:
            given = arg(cwd / "h2z") if callable(arg) else [arg]
            args += [a.replace("=RUN", f"={run_dir}") for a in given]
        cwd.mkdir(parents=True, exist_ok=True)
        return run_cli([*args, "trainer.max_epochs=1"] if args[0] == "train" else args, cwd, timeout=300)

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(CASES, pool.map(call, CASES), strict=True))
    for name, result in results.items():
        assert_refused(result, CASES[name][1])
        left = tmp_path / name.replace(" ", "_") / "outputs" / "train"
        assert not (left.is_dir() and any(left.iterdir())), f"{name}: a refused train left a run folder"
    assert tree([run_dir]) == before
