"""experiment=model_comparison: the budget as steps, each arm's model, an arm that cannot take the data skipped
with its reason, and the report (table + side-by-side grid) of a tiny sweep, in-process and through joblib."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from conftest import FAST, compose_config, run_cli
from eval_fixtures import TINY_CLASSIFIER, make_run, once
from omegaconf import OmegaConf
from PIL import Image

from genlab.build import CONFIG_DIR, instantiate_model
from genlab.resolvers import budget_steps, budget_time
from genlab.tasks.comparison import compare_sweep

ARMS = sorted(p.stem for p in (Path(CONFIG_DIR) / "arm").glob("*.yaml"))
# A short sweep: 4 steps of 64 images, 60 scored samples, small grids and timing.
COMMON = [
    "experiment=model_comparison",
    "seed=1",
    "budget.images=256",
    "trainer.max_epochs=-1",
    "trainer.limit_train_batches=null",
    "eval.n_at_end=60",
    "comparison.timing_n=8",
    "comparison.grid_per_class=2",
    "logger=none",
    "callbacks.image_grid=null",
]
TINY_GAN = ["model.generator.hidden=[32]", "model.discriminator.hidden=[32]"]
TINY_VAE = ["model.latent_dim=4", "model.encoder.ndf=8", "model.decoder.ngf=8", "callbacks.reconstruction_grid=null"]


def test_budget_in_images_or_minutes_becomes_trainer_limits():
    assert budget_steps(64000, None, 64) == 1000
    assert budget_steps(64000, None, 64, 5) == 200  # a WGAN-GP generator step eats 5 critic batches
    assert budget_steps(100, None, 64) == 2  # rounded up
    assert budget_steps(64000, 2.0, 64) == budget_steps(None, None, 64) == -1  # minutes replace images
    assert budget_time(None) is None
    assert (
        budget_time(1.5) == "00:00:01:30" and budget_time(90) == "00:01:30:00" and budget_time(0.001) == "00:00:00:01"
    )


def test_the_default_sweep_names_every_arm_and_two_seeds():
    cfg = compose_config("train", ["experiment=model_comparison"], Path("unused"))
    assert cfg.model.name == "dcgan"  # the arm when none is named
    sweep = OmegaConf.load(Path(CONFIG_DIR) / "experiment" / "model_comparison.yaml").hydra.sweeper.params
    assert sorted(sweep.arm.split(",")) == ARMS and sweep.seed == "1,2"


@pytest.mark.parametrize("arm", ARMS)
def test_each_arm_builds_its_model_at_the_same_budget_and_protocol(cfg_factory, arm):
    cfg = cfg_factory("train", ["experiment=model_comparison", f"arm={arm}"])
    expected = {"wgan_gp": "dcgan"}.get(arm, arm)
    assert cfg.model.name == expected and cfg.comparison.arm == arm
    critic_batches = 5 if arm == "wgan_gp" else 1
    assert cfg.trainer.max_steps == 64000 // (64 * critic_batches) and cfg.trainer.max_epochs == -1
    assert cfg.trainer.max_time is None and cfg.data.image_size == 16
    assert (cfg.eval.n_at_end, cfg.eval.split, dict(cfg.eval.sample_options)) == (
        1000,
        "test",
        {"sampler": "ddim", "steps": 50},
    )
    assert cfg.callbacks.fit_timer is not None and cfg.callbacks.diffusion_viz is None
    instantiate_model(cfg)
    timed = cfg_factory("train", ["experiment=model_comparison", f"arm={arm}", "budget.minutes=2"])
    assert timed.trainer.max_steps == -1 and timed.trainer.max_time == "00:00:02:00"


@once
def _sweep(factory):
    root = factory.mktemp("comparison")
    sweep, cache = root / "sweep", root / "cache"
    make_run(sweep / "0_arm=gan", [*COMMON, "arm=gan", *TINY_GAN], cache)
    make_run(sweep / "1_arm=vae", [*COMMON, "arm=vae", *TINY_VAE], cache)
    make_run(sweep / "2_arm=cvae", [*COMMON, "arm=cvae", *TINY_VAE, "data.num_classes=0"], cache)
    cfg = compose_config("train", [*FAST, *COMMON, *TINY_CLASSIFIER], sweep / "unused")
    return sweep, compare_sweep(sweep, cfg)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return _sweep(tmp_path_factory)


def test_an_arm_that_cannot_take_the_data_is_skipped_with_its_reason(sweep):
    folder, _ = sweep
    record = json.loads((folder / "2_arm=cvae" / "metrics.json").read_text())
    assert record["status"] == "skipped" and record["arm"] == "cvae"
    assert record["reason"].startswith("model=cvae needs a labelled dataset")
    assert not (folder / "2_arm=cvae" / "checkpoints").exists()


def test_the_report_tabulates_each_arm_and_shows_their_samples_side_by_side(sweep):
    folder, report = sweep
    assert report == folder / "comparison.md"
    text = report.read_text()
    assert "- budget: 256 images seen" in text and "60 samples against the test split" in text
    assert "## Skipped\n\n- cvae (seed 1): model=cvae needs a labelled dataset" in text
    with (folder / "comparison.csv").open() as handle:
        rows = {row["arm"]: row for row in csv.DictReader(handle)}
    assert [rows[a]["status"] for a in ("gan", "vae", "cvae")] == ["completed", "completed", "skipped"]
    for arm in ("gan", "vae"):
        row = rows[arm]
        timing = json.loads((folder / f"{['gan', 'vae'].index(arm)}_arm={arm}" / "timing.json").read_text())
        assert int(row["images_seen"]) == timing["images_seen"] == 256  # the matched budget, exactly
        assert float(row["fid"]) > 0 and float(row["sample_s_per_1000"]) > 0 and float(row["fit_cpu_seconds"]) > 0
        assert 0 <= float(row["class_coverage"]) <= 1
        with Image.open(folder / "grids" / f"{arm}_seed1" / "grid.png") as grid:  # 10 rows of 2 samples
            assert grid.size == (2 * 18 + 2, 10 * 18 + 2)
    gan_cfg = compose_config("train", [*COMMON, "arm=gan", *TINY_GAN], folder / "unused")
    model = instantiate_model(gan_cfg)
    assert int(rows["gan"]["params"]) == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert "| gan | 1 |" in text and "| vae | 1 |" in text and "| cvae | 0 |" in text
    with Image.open(folder / "comparison.png") as picture:  # two tiles (gan, vae) of height 256 + labels
        assert picture.width >= 2 * 200 + 8 and picture.height > 256


def processes_with_env(entry: str, wait_s: float) -> list[str]:
    """Ids of the processes whose environment holds ``entry``, polled until none is left or ``wait_s`` passes."""
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for environ in Path("/proc").glob("[0-9]*/environ"):
            try:
                if entry.encode() in environ.read_bytes().split(b"\0"):
                    found.append(environ.parent.name)
            except OSError:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.slow
def test_a_joblib_sweep_skips_the_conditional_arm_on_unlabelled_data_and_writes_the_report(tmp_path):
    args = ["train", "-m", *COMMON, "arm=gan,cvae", "data.num_classes=0", "eval.n_at_end=0", *FAST[2:-1]]
    args += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "budget.images=128"]
    marker = f"sweep-{tmp_path.name}"
    result = run_cli(args, tmp_path, timeout=300, env={"GENLAB_TEST_MARKER": marker})
    assert result.returncode == 0, result.stderr[-3000:]
    assert not processes_with_env(f"GENLAB_TEST_MARKER={marker}", wait_s=10), "the sweep's workers outlive it"
    assert "arm cvae skipped: model=cvae needs a labelled dataset" in result.stderr
    (folder,) = (tmp_path / "outputs" / "multirun").iterdir()
    assert folder.name.endswith("_model_comparison_digits")
    text = (folder / "comparison.md").read_text()
    assert "| gan | 1 |" in text and "- cvae (seed 1): model=cvae needs a labelled dataset" in text
    with Image.open(folder / "grids" / "gan_seed1" / "grid.png") as grid:  # unlabelled: 2 rows of 2
        assert grid.size == (2 * 18 + 2, 2 * 18 + 2)
    assert "skipped cvae (seed 1)" in result.stdout
