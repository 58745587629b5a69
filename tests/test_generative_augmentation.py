"""Generative augmentation (augment=generative|sdedit): mixing, labels, caching, fairness, bad input."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config, run_cli
from eval_fixtures import SEARCHPATH, cli_env, make_run, once
from hydra.errors import InstantiationException

from genlab.data.digits import DigitsDataModule
from genlab.data.sampling import MixedBatchSampler, synthetic_share
from genlab.errors import GenlabError

SIZE = ["data.image_size=16"]
TINY_DDPM = [
    "model=cddpm",
    "schedule.timesteps=20",
    "model.net.base_channels=8",
    "model.net.channel_mults=[1,2]",
    "model.net.attention_resolutions=[]",
    "eval.n_at_end=0",
]
GENERATOR = [
    "trainer.max_steps=2",
    "logger=none",
    "schedule.timesteps=10",
    "model.net.base_channels=8",
    "model.net.channel_mults=[1,2]",
    "model.net.attention_resolutions=[]",
    "eval.n_at_end=0",
]
CNN = ["model=cnn", "model.net.widths=[8,16]", "logger=none", "test=false"]


@once
def _sources(factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = factory.mktemp("sources")
    cache = root / "cache"
    replay = [SEARCHPATH, "model=replay", "eval.n_at_end=0", *SIZE]
    return {
        "cache": cache,
        "replay": make_run(root / "replay", [*replay, "model.conditional=true"], cache),
        "unconditional": make_run(root / "unconditional", replay, cache),
        "replay32": make_run(root / "replay32", [SEARCHPATH, "model=replay", "eval.n_at_end=0"], cache),
        "ddpm": make_run(root / "ddpm", [*TINY_DDPM, *SIZE, "data.train_per_class=2"], cache),
        "cnn": make_run(root / "cnn", [*CNN, *SIZE], cache),
    }


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _sources(tmp_path_factory)


def train_classifier(run_dir: Path, overrides: list[str], cache: Path, model: Sequence[str] = CNN) -> dict:
    from genlab.tasks.train import train

    cfg = compose_config("train", [*FAST, *model, *SIZE, *overrides], run_dir)
    cfg.paths.cache_dir = str(cache)
    return train(cfg)


def test_mixed_batches_hold_the_configured_share():
    sampler = MixedBatchSampler(
        n_real=100, n_pool=40, batch_size=64, n_synthetic=synthetic_share(64, 0.25), num_batches=5, seed=0
    )
    batches = list(sampler)
    assert len(batches) == 5
    for batch in batches:
        assert len(batch) == 64
        assert sum(i >= 100 for i in batch) == 16
    real_seen = [i for batch in batches[:3] for i in batch if i < 100][:100]
    assert sorted(real_seen) == list(range(100)), "every real image is used once before any repeats"


@pytest.mark.parametrize(("ratio", "expected"), [(0.0, 0), (0.5, 32), (0.999, 63)])
def test_synthetic_share(ratio, expected):
    assert synthetic_share(64, ratio) == expected


def test_epoch_size_fixes_the_steps_per_epoch():
    dm = DigitsDataModule(name="digits", channels=1, image_size=16, num_classes=10, train_per_class=5, epoch_size=256)
    loader = dm.train_dataloader()
    assert len(loader) == 4
    assert all(len(images) == 64 for images, _ in loader)


@pytest.mark.slow
def test_generative_pool_labels_cache_and_mixing(sources, tmp_path):
    source = sources["replay"]
    overrides = ["augment=generative", f"augment.source={source}", "augment.n_per_class=6", "augment.ratio=0.5"]
    metrics = train_classifier(tmp_path / "run", overrides, sources["cache"])
    assert metrics["status"] == "completed"
    assert metrics["synthetic/images"] == 60
    pool = torch.load(tmp_path / "run" / "synthetic" / "pool.pt", weights_only=True)
    assert pool["images"].shape == (60, 1, 16, 16) and pool["images"].dtype == torch.uint8
    assert torch.equal(pool["labels"], torch.arange(10).repeat_interleave(6))
    assert (tmp_path / "run" / "synthetic.png").is_file()
    # the replay generator returns real digits of the requested class: each synthetic image must be
    # a training image whose true label is the label it carries
    real = DigitsDataModule(name="digits", channels=1, image_size=16, num_classes=10).load_splits()["train"]
    for image, label in zip(pool["images"], pool["labels"], strict=True):
        matches = (real.images == image).flatten(1).all(1)
        assert matches.any() and (real.labels[matches] == label).all()
    # a second run with the same pool reuses the shared cache instead of generating again
    cached = list((sources["cache"] / "synthetic").glob("generative_*.pt"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    train_classifier(tmp_path / "again", overrides, sources["cache"])
    assert cached[0].stat().st_mtime_ns == stamp
    assert torch.equal(
        torch.load(tmp_path / "again" / "synthetic" / "pool.pt", weights_only=True)["images"], pool["images"]
    )


def test_mixed_training_batches_carry_real_and_synthetic(sources, tmp_path):
    from genlab.build import instantiate_datamodule, instantiate_model
    from genlab.tasks.synthetic import prepare_synthetic
    from genlab.tasks.train import train

    cfg = compose_config(
        "train",
        [
            *FAST,
            *CNN,
            *SIZE,
            "augment=generative",
            f"augment.source={sources['replay']}",
            "augment.n_per_class=4",
            "augment.ratio=0.25",
            "data.batch_size=32",
        ],
        tmp_path / "run",
    )
    cfg.paths.cache_dir = str(sources["cache"])
    datamodule = instantiate_datamodule(cfg)
    prepare_synthetic(cfg, datamodule, instantiate_model(cfg), train)
    real_batches = len(datamodule.dataset("train")) // 32
    loader = datamodule.train_dataloader()
    assert len(loader) == real_batches, "synthetic images never change the number of steps"
    pool = datamodule.synthetic
    images, labels = next(iter(loader))
    assert images.shape == (32, 1, 16, 16)
    synthetic = images[-8:]
    # the last 8 of each batch come from the pool, with the pool's labels
    pool_images = pool.images.float().div(127.5).sub(1)
    for image, label in zip(synthetic, labels[-8:], strict=True):
        hit = (pool_images - image).abs().flatten(1).amax(1) < 1e-5
        assert hit.any() and (pool.labels[hit] == label).all()


def test_sdedit_pool_keeps_labels_and_strengths(sources, tmp_path):
    overrides = [
        "augment=sdedit",
        f"augment.source={sources['ddpm']}",
        "augment.strengths=[0.0,0.5]",
        "augment.variations_per_image=2",
        "+augment.sample_options.steps=4",
    ]
    # the source saw 2 training images per class: a classifier that sees 3 may not use it
    with pytest.raises(GenlabError, match="Fairness rule"):
        train_classifier(tmp_path / "unfair", [*overrides, "data.train_per_class=3"], sources["cache"])
    from genlab.build import instantiate_datamodule, instantiate_model
    from genlab.tasks.synthetic import prepare_synthetic
    from genlab.tasks.train import train

    cfg = compose_config("train", [*FAST, *CNN, *SIZE, *overrides, "data.train_per_class=2"], tmp_path / "run")
    cfg.paths.cache_dir = str(sources["cache"])
    datamodule = instantiate_datamodule(cfg)
    prepare_synthetic(cfg, datamodule, instantiate_model(cfg), train)
    real = datamodule.real_train_split()
    pool = datamodule.synthetic
    n = len(real.labels)
    assert n == 20
    assert len(pool.labels) == 2 * 2 * n
    assert torch.equal(pool.labels, real.labels.repeat_interleave(2).repeat(2))
    # strength 0 returns the real image itself (up to uint8 rounding)
    assert torch.equal(pool.images[: 2 * n], real.images.repeat_interleave(2, 0))
    assert not torch.equal(pool.images[2 * n :], pool.images[: 2 * n])


def test_source_auto_trains_the_generator_on_the_same_subset(tmp_path):
    from genlab.tasks.train import train

    overrides = [
        *FAST,
        *CNN,
        *SIZE,
        "data.train_per_class=3",
        "augment=generative",
        "augment.n_per_class=2",
        "+augment.sample_options.steps=2",
        "augment_generator.overrides=[" + ",".join(f"'{o}'" for o in GENERATOR) + "]",
    ]
    cfg = compose_config("train", overrides, tmp_path / "outputs" / "run")
    metrics = train(cfg)
    assert metrics["status"] == "completed"
    generators = [p for p in (tmp_path / "outputs" / "generators").glob("cddpm_digits16_n3_*") if p.is_dir()]
    assert len(generators) == 1
    saved = json.loads((generators[0] / "metrics.json").read_text())
    assert saved["status"] == "completed"
    from genlab.build import load_run_config

    assert load_run_config(generators[0]).data.train_per_class == 3
    assert (tmp_path / "outputs" / "run" / "synthetic.png").is_file()


BAD_INPUTS = {
    "unconditional": ("generative", "unconditional", [], "needs a class-conditional generator"),
    "classifier": ("generative", "cnn", [], "needs a class-conditional generator"),
    "other_size": ("generative", "replay32", [], "data.image_size=32 there vs 16 here"),
    "ratio": ("generative", "replay", ["augment.ratio=1.0"], "augment.ratio=1.0 must be in [0, 1)"),
    "too_many": ("generative", "replay", ["data.train_per_class=500"], "data.train_per_class=500 is larger than"),
    "sdedit_from_gan": ("sdedit", "replay", [], "augment=sdedit needs a diffusion run"),
    "strength": ("sdedit", "ddpm", ["augment.strengths=[0.5,1.5]"], "strength=1.5 must be a number in [0, 1]"),
    "not_classifier": ("generative", "replay", [], "does not apply to model=dcgan"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_generative_augmentation_input(sources, tmp_path, case):
    kind, source, extra, message = BAD_INPUTS[case]
    overrides = [f"augment={kind}", f"augment.source={sources[source]}", *extra]
    with pytest.raises(Exception, match=re.escape(message)) as caught:
        model = ["model=dcgan", "logger=none"] if case == "not_classifier" else CNN
        train_classifier(tmp_path / "run", overrides, sources["cache"], model)
    assert isinstance(caught.value, GenlabError | InstantiationException)
    assert not (tmp_path / "run" / "synthetic").exists()


def test_bad_source_fails_cleanly_on_the_command_line(sources, tmp_path):
    args = ["train", *FAST, *CNN, *SIZE, "augment=generative", f"augment.source={sources['unconditional']}"]
    result = run_cli(args, tmp_path, env=cli_env(sources["cache"]))
    assert result.returncode != 0
    assert "augment.source=" in result.stderr and "label" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_cli([*args[:-1], f"augment.source={tmp_path / 'nothing'}"], tmp_path, env=cli_env(sources["cache"]))
    assert missing.returncode != 0 and "is not a genlab run folder" in missing.stderr
