"""augment=inpaint: RePaint variations of the real training images — labels, known pixels, caching, mixing,
fairness and bad settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from conftest import FAST, compose_config
from eval_fixtures import SEARCHPATH, make_run, once

from genlab.augment.inpaint import InpaintAugmentation
from genlab.build import CONFIG_DIR
from genlab.errors import GenlabError

SIZE = ["data.image_size=16"]
TINY_DDPM = [
    "model=cddpm",
    "schedule.timesteps=20",
    "model.net.base_channels=8",
    "model.net.channel_mults=[1,2]",
    "model.net.attention_resolutions=[]",
    "callbacks.diffusion_viz=null",
    "logger=none",
    "eval.n_at_end=0",
]
CNN = ["model=cnn", "model.net.widths=[8,16]", "logger=none", "test=false"]
POOL = [
    "augment=inpaint",
    "augment.variations_per_image=2",
    "augment.masks=[center,random_box,strokes]",
    "augment.mask_size=[0.25,0.5]",
    "augment.resample=2",
    "augment.jump=1",
    "+augment.sample_options.steps=4",
    "data.train_per_class=2",
    "data.batch_size=8",
]


@once
def _sources(factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = factory.mktemp("inpaint_sources")
    cache = root / "cache"
    replay = [SEARCHPATH, "model=replay", "model.conditional=true", "eval.n_at_end=0", *SIZE, "data.train_per_class=2"]
    return {
        "cache": cache,
        "ddpm": make_run(root / "ddpm", [*TINY_DDPM, *SIZE, "data.train_per_class=2"], cache),
        "replay": make_run(root / "replay", replay, cache),
    }


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _sources(tmp_path_factory)


def prepared(run_dir: Path, overrides: list[str], cache: Path):
    """The datamodule of a classifier run with its synthetic pool added (as ``train`` does before fitting)."""
    from genlab.build import instantiate_datamodule, instantiate_model
    from genlab.tasks.synthetic import prepare_synthetic
    from genlab.tasks.train import train

    cfg = compose_config("train", [*FAST, *CNN, *SIZE, *overrides], run_dir)
    cfg.paths.cache_dir = str(cache)
    datamodule = instantiate_datamodule(cfg)
    prepare_synthetic(cfg, datamodule, instantiate_model(cfg), train)
    return datamodule


def test_pool_keeps_labels_and_known_pixels_and_is_shared_through_the_cache(sources, tmp_path):
    overrides = [*POOL, f"augment.source={sources['ddpm']}"]
    datamodule = prepared(tmp_path / "run", overrides, sources["cache"])
    real, pool = datamodule.real_train_split(), datamodule.synthetic
    assert len(real.labels) == 20 and len(pool.labels) == 40
    assert torch.equal(pool.labels, real.labels.repeat_interleave(2))
    sources_of_pool = real.images.repeat_interleave(2, 0)
    augmentation = datamodule.augmentation
    masks = augmentation.draw_masks(40, 16).bool()  # the pool's masks: seeded, so drawn again identically
    assert torch.equal(pool.images[~masks], sources_of_pool[~masks]), "a known pixel changed"
    changed = (pool.images != sources_of_pool).flatten(1).any(1)
    assert changed.sum() >= 30, "the masked regions were regenerated"
    coverage = masks.flatten(1).float().mean(1)
    assert coverage.min() > 0 and coverage.max() < 1
    # every arm trains the same steps: the pool changes what a batch holds, not how many batches there are
    without = prepared(tmp_path / "none", ["data.train_per_class=2", "data.batch_size=8"], sources["cache"])
    assert len(datamodule.train_dataloader()) == len(without.train_dataloader()) == 2
    cached = list((sources["cache"] / "synthetic").glob("inpaint_*.pt"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    again = prepared(tmp_path / "again", overrides, sources["cache"])
    assert cached[0].stat().st_mtime_ns == stamp and torch.equal(again.synthetic.images, pool.images)
    assert (tmp_path / "run" / "synthetic.png").is_file() and (tmp_path / "again" / "synthetic" / "pool.pt").is_file()
    other = prepared(tmp_path / "other", [*overrides, "augment.resample=1"], sources["cache"])
    assert len(list((sources["cache"] / "synthetic").glob("inpaint_*.pt"))) == 2
    assert torch.equal(other.synthetic.images[~masks], sources_of_pool[~masks])


def test_a_non_diffusion_source_and_another_subset_are_refused(sources, tmp_path):
    with pytest.raises(GenlabError, match="augment=inpaint needs a diffusion run"):
        prepared(tmp_path / "gan", [*POOL, f"augment.source={sources['replay']}"], sources["cache"])
    with pytest.raises(GenlabError, match="Fairness rule"):
        prepared(
            tmp_path / "unfair",
            [*POOL, f"augment.source={sources['ddpm']}", "data.train_per_class=3"],
            sources["cache"],
        )
    assert not (tmp_path / "gan" / "synthetic").exists() and not (tmp_path / "unfair" / "synthetic").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"masks": ["circle"]}, "augment.masks=['circle'] must list mask kinds"),
        ({"masks": []}, "must list mask kinds"),
        ({"mask_size": [0.6, 0.3]}, "augment.mask_size=[0.6, 0.3] must be a pair"),
        ({"mask_size": [0, 0.3]}, "must be a pair [low, high] with 0 < low"),
        ({"resample": 0}, "augment.resample=0 must be an integer ≥ 1"),
        ({"jump": 0}, "augment.jump=0 must be an integer ≥ 1"),
        ({"variations_per_image": 0}, "augment.variations_per_image=0 must be an integer ≥ 1"),
    ],
)
def test_bad_settings_are_refused_by_name(settings, message):
    with pytest.raises(GenlabError, match=message.replace("[", r"\[").replace("]", r"\]")):
        InpaintAugmentation(**settings)


def test_the_study_has_the_inpaint_arms():
    study = yaml.safe_load((CONFIG_DIR / "experiment" / "generative_augmentation.yaml").read_text())
    arms = study["hydra"]["sweeper"]["params"]["augment"].split(",")
    assert {"sdedit", "inpaint", "basic_inpaint"} <= set(arms)
