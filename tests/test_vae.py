"""model=vae|cvae: ELBO logging, a falling loss, prior samples, interpolations, the conditional variant's labels."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import compose_config
from eval_fixtures import make_run, once
from hydra.errors import InstantiationException
from PIL import Image

from genlab.api import Run
from genlab.build import instantiate_datamodule, instantiate_model
from genlab.capabilities import Encodes, GeneratesConditionally, Interpolates, generates_conditionally
from genlab.errors import GenlabError
from genlab.models.vae import VAEModule
from genlab.tasks.autoencoders import encoded_interpolations
from genlab.tasks.sample import sample

TINY_VAE = [
    "data.image_size=16",
    "model.latent_dim=4",
    "model.encoder.ndf=8",
    "model.decoder.ngf=8",
    "logger=csv",
    "trainer.log_every_n_steps=1",
    "trainer.limit_val_batches=2",
]


@once
def _runs(factory):
    root = factory.mktemp("vae")
    return {name: make_run(root / name, [f"model={name}", *TINY_VAE], root / "cache") for name in ("vae", "cvae")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return _runs(tmp_path_factory)


def test_train_logs_recon_kl_and_the_validation_elbo(runs):
    metrics = json.loads((runs["vae"] / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["train/recon"] > 0 and metrics["train/kl"] >= 0
    assert metrics["val/elbo"] == pytest.approx(-(metrics["val/recon"] + metrics["val/kl"]), rel=1e-5)
    assert metrics["train/loss"] < metrics["train/recon"] + metrics["train/kl"]  # KL warm-up weight < 1
    with Image.open(runs["vae"] / "samples" / "reconstruct.png") as image:  # 32 pairs, 8 pairs a row
        assert image.size == (16 * 18 + 2, 4 * 18 + 2)
    assert (runs["vae"] / "samples" / "epoch_0001.png").is_file()


def test_the_negative_elbo_falls_with_training(tmp_path):
    cfg = compose_config("train", ["model=vae", *TINY_VAE, "model.kl_warmup_steps=0"], tmp_path)
    torch.manual_seed(0)
    model: VAEModule = instantiate_model(cfg)
    data = instantiate_datamodule(cfg)
    data.setup()
    images, labels = next(iter(data.dataloader("train", shuffle=True)))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss, recon, kl = model._elbo(images, labels, 1.0, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        assert loss.item() == pytest.approx((recon + kl).item(), rel=1e-6)
    assert sum(losses[-5:]) < 0.75 * sum(losses[:5])  # 40 steps on one batch: down by more than a quarter


def test_sampling_and_interpolation_shapes(runs, tmp_path):
    run = Run.load(runs["vae"], device="cpu")
    model = run.model
    assert isinstance(model, Encodes) and isinstance(model, Interpolates) and not generates_conditionally(model)
    assert run.capabilities() == ["generate", "interpolate", "encode"]
    assert run.generation_options() == {}
    samples = run.sample(10, seed=3)
    assert samples.images.shape == (10, 1, 16, 16) and samples.labels is None
    assert samples.images.min() >= -1 and samples.images.max() <= 1
    assert torch.equal(samples.images, run.sample(10, seed=3).images)
    assert run.interpolate(2, 5).images.shape == (10, 1, 16, 16)
    cfg = compose_config("sample", [f"run={runs['vae']}", "interpolate=test", "n=12", "nrow=6"], tmp_path)
    images, labels, per_row = encoded_interpolations(run, cfg, {})
    assert images.shape == (2 * 8, 1, 16, 16) and labels is None and per_row == 8
    starts, _ = run.split_images("test", 4)
    path = images.view(2, 8, 1, 16, 16)
    assert torch.equal(path[:, 0], starts[0::2])  # the originals at the ends of each row
    decoded = model.decode(model.encode(starts[0::2]))
    assert torch.allclose(path[:, 1], decoded, atol=1e-5)  # the path starts at the first image's encoding
    written = sample(cfg)
    with Image.open(written[0]) as grid:
        assert grid.size == (8 * 18 + 2, 2 * 18 + 2)


def test_prior_samples_do_not_use_the_runs_noise_dist(tmp_path):
    cfg = compose_config("train", ["model=vae", *TINY_VAE, "noise_dist=uniform"], tmp_path)
    model = instantiate_model(cfg)
    z = model.sample_latent(20_000, torch.Generator().manual_seed(0))
    assert z.min() < -3 and z.std().item() == pytest.approx(1.0, rel=0.02)  # N(0, I), not U(-1, 1)


def test_conditional_vae_generates_the_requested_classes(runs, tmp_path):
    run = Run.load(runs["cvae"], device="cpu")
    model = run.model
    assert isinstance(model, GeneratesConditionally) and generates_conditionally(model) and model.num_classes == 10
    samples = run.sample(20, seed=0)
    assert samples.labels.tolist() == [c for c in range(10) for _ in range(2)]  # class-ordered
    z = model.sample_latent(2, torch.Generator().manual_seed(0)).repeat(2, 1)
    images = model.decode(z, torch.tensor([3, 3, 7, 7]))
    assert not torch.allclose(images[:2], images[2:])  # the label changes the decoding of the same z
    cfg = compose_config("sample", [f"run={runs['cvae']}", "interpolate=val", "n=8", "nrow=4", "label=5"], tmp_path)
    images, labels, per_row = encoded_interpolations(run, cfg, {})
    assert per_row == 6 and labels.tolist() == [5] * 12
    val_images, val_labels = run.split_images("val", 1000)
    fives = val_images[val_labels == 5]
    rows = images.view(2, 6, 1, 16, 16)
    assert torch.equal(rows[:, 0], fives[[0, 2]]) and torch.equal(rows[:, -1], fives[[1, 3]])  # pairs of one class
    with pytest.raises(GenlabError, match="needs a label for every image"):
        model.encode(images[:2])


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["interpolate=sideways"], "interpolate=sideways must be true"),
        (["interpolate=test", "nrow=1"], "nrow=1 must be at least 2"),
        (["interpolate=test", "label=3"], "label=3 was given, but model=vae is unconditional"),
    ],
)
def test_bad_encoded_interpolations_are_refused(runs, tmp_path, overrides, match):
    cfg = compose_config("sample", [f"run={runs['vae']}", *overrides], tmp_path)
    with pytest.raises(GenlabError, match=match):
        sample(cfg)


def test_cvae_refuses_unlabelled_data(tmp_path):
    cfg = compose_config("train", ["model=cvae", *TINY_VAE, "data.num_classes=0"], tmp_path)
    with pytest.raises(InstantiationException) as failure:
        instantiate_model(cfg)
    assert isinstance(failure.value.__cause__, GenlabError)
    assert str(failure.value.__cause__).startswith("model=cvae needs a labelled dataset")


def test_mismatched_latent_sizes_are_refused(tmp_path):
    cfg = compose_config("train", ["model=vae", *TINY_VAE, "model.decoder.nz=5"], tmp_path)
    with pytest.raises(InstantiationException, match=r"must share model\.latent_dim"):
        instantiate_model(cfg)
