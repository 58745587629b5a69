"""The held-out-class study on tiny runs: class inversion touches only the new embeddings, the inverted
run samples and edits, the held-out fairness rule, and DAGAN / DA-Fusion pools (labels, caching, determinism)."""

from __future__ import annotations

import pytest
import torch
from conftest import FAST, compose_config
from fewshot_fixtures import HELDOUT_CNN, INVERT_OPTIONS, fewshot_runs, invert_settings

from genlab.api import Run
from genlab.build import instantiate_datamodule, instantiate_model
from genlab.errors import GenlabError
from genlab.io import safe_torch_load
from genlab.tasks.invert import invert_run
from genlab.tasks.synthetic import prepare_synthetic
from genlab.tasks.train import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return fewshot_runs(tmp_path_factory)


def invert(runs, out, classes=(5, 6), k=2, **options):
    return invert_run(
        runs["cddpm"], list(classes), k, out, {**INVERT_OPTIONS, **options}, invert_settings(runs["cache"])
    )


def pool_for(runs, run_dir, overrides):
    """Build (or load) the synthetic pool of a held-out classifier config; return (datamodule, scores)."""
    cfg = compose_config("train", [*FAST, *HELDOUT_CNN, *overrides], run_dir)
    cfg.paths.cache_dir = str(runs["cache"])
    datamodule = instantiate_datamodule(cfg)
    return datamodule, prepare_synthetic(cfg, datamodule, instantiate_model(cfg), train)


def test_inversion_changes_only_the_new_embeddings_and_is_deterministic(runs, tmp_path):
    invert(runs, tmp_path / "a")
    base = safe_torch_load(runs["cddpm"] / "checkpoints" / "last.ckpt")["state_dict"]
    inverted = safe_torch_load(tmp_path / "a" / "checkpoints" / "inversion.ckpt")["state_dict"]
    assert set(inverted) - set(base) == {"net.new_emb", "ema_net.module.new_emb"}
    for key, value in base.items():
        assert torch.equal(inverted[key], value), f"{key} changed during inversion"
    learned = inverted["ema_net.module.new_emb"]
    assert learned.shape == (2, 1, 32)
    assert torch.equal(inverted["net.new_emb"], learned)
    start = base["ema_net.module.class_emb.weight"][:5].mean(0)
    assert not torch.allclose(learned[0, 0], start), "three Adam steps moved the embedding away from its start"
    invert(runs, tmp_path / "b")
    again = safe_torch_load(tmp_path / "b" / "checkpoints" / "inversion.ckpt")["state_dict"]
    assert torch.equal(again["ema_net.module.new_emb"], learned)
    invert(runs, tmp_path / "c", seed=1)
    other = safe_torch_load(tmp_path / "c" / "checkpoints" / "inversion.ckpt")["state_dict"]
    assert not torch.equal(other["ema_net.module.new_emb"], learned)


def test_an_inverted_run_samples_and_edits_its_new_classes(runs, tmp_path):
    metrics = invert(runs, tmp_path / "inv", classes=(7, 5), k=3)
    assert metrics["status"] == "completed" and (tmp_path / "inv" / "samples.png").is_file()
    run = Run.load(tmp_path / "inv", device="cpu")
    assert run.model.num_classes == 7 and run.model.class_ids == (0, 1, 2, 3, 4, 7, 5)
    assert run.config.inversion.k == 3 and list(run.config.inversion.classes) == [7, 5]
    assert torch.equal(run.model.label_of(torch.tensor([5, 7, 2])), torch.tensor([6, 5, 2]))
    samples = run.sample(4, label=6, sampler="ddim", steps=2)
    assert samples.images.shape == (4, 1, 16, 16) and samples.labels.tolist() == [6, 6, 6, 6]
    images, _ = run.split_images("train", 2)
    edited = run.edit(images, 0.5, labels=torch.tensor([5, 6]), sampler="ddim", steps=4)
    assert edited.shape == images.shape and not torch.equal(edited, images)
    with pytest.raises(GenlabError, match="out of range"):
        run.sample(2, label=7)


def test_heldout_fairness_refuses_a_generator_that_saw_a_heldout_class(runs, tmp_path):
    with pytest.raises(GenlabError, match="was trained on class 5, which this study holds out"):
        pool_for(runs, tmp_path / "r", ["augment=sdedit_null", f"augment.source={runs['cddpm_all']}"])
    with pytest.raises(GenlabError, match=r"augment\.guide=false"):
        pool_for(runs, tmp_path / "r", ["augment=sdedit", f"augment.source={runs['cddpm']}"])
    with pytest.raises(GenlabError, match=r"data\.image_size=16 there vs 32 here"):
        cfg = ["augment=sdedit_null", f"augment.source={runs['cddpm']}", "data.image_size=32"]
        pool_for(runs, tmp_path / "r", cfg)
    # an inversion must have seen exactly the classifier's images
    invert(runs, tmp_path / "inv", classes=(5, 6, 7, 8, 9), k=2)
    source = ["augment=da_fusion", f"augment.source={tmp_path / 'inv'}", "+augment.sample_options.steps=2"]
    with pytest.raises(GenlabError, match="learned its classes from other images"):
        pool_for(runs, tmp_path / "r", [*source, "data.train_per_class=3"])
    with pytest.raises(GenlabError, match="learned its classes from other images"):
        pool_for(runs, tmp_path / "r", [*source, "data.train_per_class=2", "data.subset_seed=7"])
    datamodule, scores = pool_for(runs, tmp_path / "ok", [*source, "data.train_per_class=2"])
    assert scores["synthetic/images"] == 10 * 3
    # each variation is guided by its class's learned label: classifier label i is digit 5 + i, label 5 + i
    augmentation = datamodule.augmentation
    run = Run.load(tmp_path / "inv", device="cpu")
    assert torch.equal(augmentation.guide_labels(run.model, torch.tensor([0, 4, 2])), torch.tensor([5, 9, 7]))


def test_dagan_pool_labels_caching_and_determinism(runs, tmp_path):
    overrides = ["augment=dagan", f"augment.source={runs['dagan']}", "augment.variations_per_image=3"]
    overrides.append("data.train_per_class=2")
    datamodule, scores = pool_for(runs, tmp_path / "one", overrides)
    real, pool = datamodule.real_train_split(), datamodule.synthetic
    assert len(pool.labels) == 3 * len(real.labels) == 30
    assert torch.equal(pool.labels, real.labels.repeat_interleave(3)), "each variation keeps its source's label"
    assert 0 <= scores["synthetic/class_agreement"] <= 1 and "synthetic/build_cpu_seconds" in scores
    cached = list((runs["cache"] / "synthetic").glob("dagan_*.pt"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    _, again = pool_for(runs, tmp_path / "two", overrides)
    assert cached[0].stat().st_mtime_ns == stamp and "synthetic/build_cpu_seconds" not in again
    cached[0].unlink()
    rebuilt, _ = pool_for(runs, tmp_path / "three", overrides)
    assert torch.equal(rebuilt.synthetic.images, pool.images), "the same seed makes the same pool"
    pool_for(runs, tmp_path / "four", [*overrides, "data.subset_seed=3"])
    assert len(list((runs["cache"] / "synthetic").glob("dagan_*.pt"))) == 2, "other images, other pool"


def test_a_dagan_run_varies_images_reproducibly(runs):
    run = Run.load(runs["dagan"], device="cpu")
    assert run.capabilities() == ["vary"]
    images, _ = run.split_images("test", 3)
    varied = run.vary(images, 4, seed=5)
    assert varied.shape == (3, 4, 1, 16, 16) and float(varied.abs().max()) <= 1
    assert torch.equal(varied, run.vary(images, 4, seed=5))
    assert not torch.equal(varied[:, 0], varied[:, 1]), "each variation draws its own z"
