"""The memorisation check of ``genlab eval`` and of the end of training, on generators whose answer is known:
a replay generator that emits training images (it copies: share 1) and one that emits noise (share 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run_cli
from eval_fixtures import SEARCHPATH, TINY_CLASSIFIER, cli_env, eval_cache, make_run  # noqa: F401
from PIL import Image

from genlab.api import Run
from genlab.metrics.memorization import memorisation


@pytest.fixture(scope="module")
def replay_runs(eval_cache, tmp_path_factory) -> dict[str, Path]:  # noqa: F811
    root = tmp_path_factory.mktemp("memorisation_runs")
    common = [SEARCHPATH, "model=replay", "eval.n_at_end=100"]
    return {mode: make_run(root / mode, [*common, f"model.mode={mode}"], eval_cache) for mode in ("data", "noise")}


def test_train_writes_the_share_of_copies_beside_the_test_images_baseline(replay_runs):
    copying = json.loads((replay_runs["data"] / "metrics.json").read_text())
    noise = json.loads((replay_runs["noise"] / "metrics.json").read_text())
    # replayed training images sit at distance ~0 from a training image: all closer than the median NN distance
    assert copying["memorisation_share"] == 1.0 and copying["memorisation_share_pixels"] == 1.0
    assert noise["memorisation_share"] == 0.0 and noise["memorisation_share_pixels"] == 0.0
    for metrics in (copying, noise):  # real test images: about half are closer than the median
        assert 0.3 < metrics["memorisation_baseline"] < 0.7 and 0.3 < metrics["memorisation_baseline_pixels"] < 0.7


def test_evaluate_returns_the_nearest_grid_and_the_numbers_of_the_definition(replay_runs):
    run = Run.load(replay_runs["data"], device="cpu")
    evaluation = run.evaluate(n=100)
    metrics = evaluation.metrics
    train = run.datamodule.dataset("train")
    test = run.datamodule.dataset("test")
    # 100 samples checked; the baseline uses up to eval.memorisation.n (1000) test images: all 359
    assert metrics["memorisation_n"] == 100 and metrics["memorisation_test_n"] == len(test) == 359
    assert metrics["memorisation_train_n"] == len(train)
    # recompute in pixels from the same samples (one generate() call of 100, seed 0) and the stored images
    samples = run.sample(100, seed=0).images
    train_u8 = torch.stack([train.load_uint8(i) for i in range(len(train))])
    test_u8 = torch.stack([test.load_uint8(i) for i in range(len(test))])
    report = memorisation(samples.add(1).mul(127.5), train_u8, test_u8, k=3)
    assert metrics["memorisation_share_pixels"] == report.share
    assert metrics["memorisation_baseline_pixels"] == report.baseline_share
    # 16 rows of: sample | 3 nearest in features | 3 nearest in pixels; a replayed image is its own nearest
    grid = evaluation.nearest
    assert grid.shape == (16 * 7, 1, 32, 32)
    torch.testing.assert_close(grid[0::7], samples[:16], atol=0, rtol=0)
    torch.testing.assert_close(grid[4::7], samples[:16], atol=1e-2, rtol=0)
    torch.testing.assert_close(grid[4::7], train_u8[report.indices[:16, 0]].float() / 127.5 - 1)


def test_no_baseline_against_the_training_split_and_no_check_unless_asked(replay_runs):
    run = Run.load(replay_runs["noise"], device="cpu")
    on_train = run.evaluate(n=50, split="train", metrics=["memorisation"])
    assert on_train.metrics["memorisation_baseline"] is None and on_train.metrics["memorisation_test_n"] == 0
    assert on_train.metrics["memorisation_share"] == 0.0
    without = run.evaluate(n=50, metrics=["fid"])
    assert without.nearest is None and not any(k.startswith("memorisation") for k in without.metrics)


def test_eval_cli_writes_nearest_png_into_the_eval_folder(replay_runs, eval_cache, tmp_path):  # noqa: F811
    run = replay_runs["data"]
    args = ["eval", f"run={run}", "n=40", "eval.memorisation.rows=5", *TINY_CLASSIFIER]
    result = run_cli(args, tmp_path, env=cli_env(eval_cache))
    assert result.returncode == 0, result.stderr
    (out,) = sorted((run / "eval").iterdir())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["memorisation_share"] == 1.0 and metrics["memorisation_n"] == 40
    assert "memorisation_share" in result.stdout
    with Image.open(out / "nearest.png") as picture:
        assert picture.size == (7 * 34 + 2, 5 * 34 + 2)  # 7 images of 32 px a row, 5 rows, 2 px padding
