"""experiment=small_data_gan: the preset composes into equal-step arms; the sweep summary tabulates
memorisation and p and plots FID against data size; ``model.diffaug=a,b`` on the command line."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import FAST, compose_config
from omegaconf import OmegaConf

from genlab.build import CONFIG_DIR, instantiate_datamodule, instantiate_model
from genlab.callbacks.sweep import collect_runs, write_summary
from genlab.callbacks.sweep_plot import size_series
from genlab.tasks.overrides import comma_lists

ARMS = {
    "none": None,
    "translation_cutout": (("translation", "cutout"), 1.0),
    "color_translation_cutout": (("color", "translation", "cutout"), 1.0),
    "adaptive": (("color", "translation", "cutout"), "adaptive"),
}


def test_the_sweep_covers_sizes_arms_and_seeds():
    params = OmegaConf.load(CONFIG_DIR / "experiment" / "small_data_gan.yaml").hydra.sweeper.params
    assert params["data.train_per_class"] == "10,30,null" and params.seed == "1,2"
    assert params.diffaug.split(",") == list(ARMS)
    assert sorted(p.stem for p in (CONFIG_DIR / "diffaug").glob("*.yaml")) == sorted(ARMS)


@pytest.mark.parametrize("arm", list(ARMS))
def test_each_arm_composes_into_the_study_dcgan(tmp_path, arm):
    cfg = compose_config("train", ["experiment=small_data_gan", f"diffaug={arm}", "data.train_per_class=10"], tmp_path)
    assert cfg.model.name == "dcgan" and cfg.data.image_size == 16
    assert cfg.model.generator.ngf == 32 and cfg.model.discriminator.ndf == 32
    model = instantiate_model(cfg)
    if ARMS[arm] is None:
        assert model.d_augment is None
    else:
        policy, p = ARMS[arm]
        assert model.d_augment.augment.policy == policy
        assert model.d_augment.adaptive == (p == "adaptive")
        assert model.d_augment.p == (0.0 if p == "adaptive" else p)  # adaptive starts at ada_p_init


@pytest.mark.parametrize("per_class", [10, 30, None])
def test_every_size_trains_the_same_number_of_generator_steps(tmp_path, per_class):
    size = "null" if per_class is None else per_class
    cfg = compose_config("train", ["experiment=small_data_gan", f"data.train_per_class={size}"], tmp_path)
    datamodule = instantiate_datamodule(cfg)
    assert len(datamodule.dataset("train")) == (10 * per_class if per_class else 1258)
    assert len(datamodule.train_dataloader()) * cfg.trainer.max_epochs == 2000


def _job(sweep, index, size, arm, seed, metrics):
    overrides = [f"data.train_per_class={size}", f"diffaug={arm}", f"seed={seed}"]
    job = sweep / f"{index}_job"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / "metrics.json").write_text(json.dumps(metrics))


def test_summary_tabulates_fid_recall_memorisation_and_p_and_plots_fid_against_size(tmp_path):
    from PIL import Image

    jobs = [("10", "none", 1, 60.0), ("10", "none", 2, 50.0), ("10", "adaptive", 1, 40.0), ("null", "none", 1, 10.0)]
    for i, (size, arm, seed, fid) in enumerate(jobs):
        metrics = {"fid": fid, "recall": 0.5, "memorisation_share": 0.1, "train/aug_p": 0.3, "train/aug_p_step": 0.2}
        _job(tmp_path, i, size, arm, seed, metrics)
    rows = collect_runs(tmp_path)
    assert all("train/aug_p_step" not in row for row in rows) and rows[0]["memorisation_share"] == 0.1
    assert size_series(rows, "fid") == {
        "diffaug=none": {"10": [60.0, 50.0], "all": [10.0]},
        "diffaug=adaptive": {"10": [40.0]},
    }
    text = write_summary(tmp_path)
    assert "fid_vs_size.png" in text and "55.0000 ± 7.0711" in text and "memorisation_share" in text
    assert not (tmp_path / "accuracy_vs_size.png").exists()  # no test/acc in these jobs
    with Image.open(tmp_path / "fid_vs_size.png") as plot:
        assert plot.size[0] > 400 and plot.size[1] > 300


def test_a_comma_policy_is_passed_as_a_list_outside_a_multirun():
    assert comma_lists(["model.diffaug=translation,cutout", "seed=1"]) == [
        "model.diffaug=[translation,cutout]",
        "seed=1",
    ]
    kept = ["model.diffaug=[color,cutout]", "model.diffaug='color,cutout'", "model.diffaug=cutout"]
    assert comma_lists(kept) == kept
    sweep = ["-m", "model.diffaug=translation,cutout"]
    assert comma_lists(sweep) == sweep  # in a multirun the comma sweeps, as everywhere in Hydra


def test_the_comma_form_trains_the_combined_policy(tmp_path):
    cfg = compose_config(
        "train", [*FAST, "model=dcgan", comma_lists(["model.diffaug=translation,cutout"])[0]], tmp_path
    )
    assert instantiate_model(cfg).d_augment.augment.policy == ("translation", "cutout")
