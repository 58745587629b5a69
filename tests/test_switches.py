"""The speed switches, checked for correctness on a CPU: bf16 autocast, channels_last, torch.compile,
per-batch augmentation on the device, and the device-resident data path."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import FAST
from hydra.utils import instantiate
from torchvision.transforms import v2

from genlab.augment import Augmentation, Cutout
from genlab.augment.batched import batch_transform
from genlab.build import instantiate_datamodule, instantiate_model, instantiate_trainer
from genlab.errors import GenlabError
from genlab.tasks.train import train

QUIET = ["trainer.enable_progress_bar=false", "callbacks.progress_bar=null", "logger=none", "eval.n_at_end=0"]
TINY = {
    "cnn": ["model=cnn", "model.net.widths=[4]", "data.image_size=16"],
    "gan": ["model=gan", "model.generator.hidden=[16]", "model.discriminator.hidden=[16]", "data.image_size=16"],
    "dcgan": ["model=dcgan", "model.generator.ngf=4", "model.discriminator.ndf=4", "data.image_size=16"],
    "cgan": ["model=cgan", "model.generator.ngf=4", "model.discriminator.ndf=4", "data.image_size=16"],
    "pix2pix": [
        "model=pix2pix",
        "data=edges2digits",
        "data.image_size=32",
        "model.generator.ngf=4",
        "model.discriminator.ndf=4",
        "data.batch_size=8",
    ],
    "ddpm": [
        "model=ddpm",
        "data.image_size=8",
        "schedule.timesteps=10",
        "model.net.base_channels=4",
        "model.net.channel_mults=[1]",
        "model.net.attention_resolutions=[]",
        "callbacks.diffusion_viz=null",
    ],
}
LOSSES = {"cnn": "train/loss", "pix2pix": "train/loss_g", "ddpm": "train/loss"}


@pytest.mark.parametrize("name", list(TINY))
def test_bf16_mixed_precision_trains_every_model(cfg_factory, name):
    cfg = cfg_factory("train", [*TINY[name], "trainer.precision=bf16-mixed", "trainer.fast_dev_run=1", *QUIET])
    trainer = instantiate_trainer(cfg, [], [])
    trainer.fit(instantiate_model(cfg), datamodule=instantiate_datamodule(cfg))
    assert trainer.precision == "bf16-mixed" and trainer.global_step >= 1
    assert math.isfinite(float(trainer.callback_metrics[LOSSES.get(name, "train/loss_g")]))


def test_channels_last_and_compile_keep_the_checkpoint_keys(cfg_factory):
    switches = ["speed.channels_last=true", "speed.compile=true", "speed.compile_backend=eager"]
    torch.manual_seed(0)
    plain = instantiate_model(cfg_factory("train", TINY["cnn"]))
    torch.manual_seed(0)
    model = instantiate_model(cfg_factory("train", [*TINY["cnn"], *switches]))
    conv = next(p for p in model.net.parameters() if p.ndim == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert list(model.state_dict()) == list(plain.state_dict())
    assert model.net._compiled_call_impl is not None and plain.net._compiled_call_impl is None
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    assert torch.allclose(model.eval()(images), plain.eval()(images), atol=1e-5)
    loss = torch.nn.functional.cross_entropy(model.train()(images), torch.arange(4))
    loss.backward()  # the compiled forward trains
    assert next(model.net.parameters()).grad is not None
    plain.load_state_dict(model.state_dict())  # a compiled run's checkpoint loads into a plain model


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=gan", "speed.channels_last=true"], "no convolution layers"),
        (["model=dcgan", "speed.compile=true", "speed.compile_backend=nonsense"], "not a torch.compile backend"),
        (["model=dcgan", "speed.compile=yes"], "speed.compile=yes must be true or false"),
    ],
)
def test_misused_model_switches_are_refused_by_name(cfg_factory, overrides, message):
    with pytest.raises(GenlabError, match=message):
        instantiate_model(cfg_factory("train", overrides))


def test_float16_precision_on_a_cpu_is_refused(cfg_factory):
    cfg = cfg_factory("train", ["trainer.accelerator=cpu", "trainer.precision=16-mixed"])
    with pytest.raises(GenlabError, match="bf16-mixed"):
        instantiate_trainer(cfg, [], [])


def test_batched_augmentation_draws_its_parameters_per_image():
    images = torch.linspace(0, 1, 16).expand(64, 1, 16, 16).contiguous()
    flipped = batch_transform(v2.RandomHorizontalFlip(0.5))(images)
    is_flipped = (flipped[:, 0, 0, 0] == 1).float()
    assert 0 < is_flipped.mean() < 1
    cropped = batch_transform(v2.RandomCrop(16, padding=4))(images)
    assert cropped.shape == images.shape and len({tuple(c[0, 8].tolist()) for c in cropped}) > 3
    jittered = batch_transform(v2.ColorJitter(brightness=0.5))(images)
    assert len(set((jittered[:, 0, 0, -1]).tolist())) > 10
    cut = batch_transform(Cutout(4, p=1.0))(torch.ones(8, 3, 16, 16))
    assert ((cut == 0).flatten(1).sum(1) > 0).all()


def test_strong_augmentation_runs_on_the_batch_and_unsupported_transforms_are_named(cfg_factory):
    cfg = cfg_factory("train", ["augment=strong", "augment.on_device=true"])
    augmentation = instantiate(cfg.augment)
    assert augmentation.sample_transform is None and not augmentation.mixes_labels
    images, labels = augmentation.apply_batch(torch.rand(16, 1, 32, 32) * 2 - 1, torch.arange(16))
    assert images.shape == (16, 1, 32, 32) and images.min() >= -1 and images.max() <= 1
    assert torch.equal(labels, torch.arange(16))
    with pytest.raises(GenlabError, match=r"cannot batch ColorJitter .*augment.on_device=false"):
        Augmentation("x", [v2.ColorJitter(hue=0.1)], on_device=True)


def test_device_resident_data_path_gathers_the_same_batches(cfg_factory):
    cfg = cfg_factory("train", ["data.on_device=true", "data.batch_size=8"])
    datamodule = instantiate_datamodule(cfg)
    datamodule.setup("fit")
    index = next(iter(datamodule.train_dataloader()))
    assert index.dtype == torch.long and index.shape == (8,)
    images, labels = datamodule.on_after_batch_transfer(index, 0)
    expected_images, expected_labels = datamodule.dataset("train")[index]
    assert torch.equal(images, expected_images) and torch.equal(labels, expected_labels)
    val_images, _ = next(iter(datamodule.val_dataloader()))
    assert val_images.shape == (8, 1, 32, 32)


def test_device_resident_data_and_batched_augmentation_train_a_model(cfg_factory):
    overrides = ["data.on_device=true", "augment=basic", "augment.on_device=true", *FAST, "logger=none"]
    metrics = train(cfg_factory("train", [*TINY["cnn"], *overrides]))
    assert metrics["status"] == "completed" and math.isfinite(metrics["train/loss"])


def test_device_resident_data_refuses_file_datasets(cfg_factory, data_root):
    overrides = ["data=image_folder", f"data.root={data_root / 'folder'}", "data.num_classes=2", "data.on_device=true"]
    cfg = cfg_factory("train", overrides)
    with pytest.raises(GenlabError, match=r"data.on_device=true .* read file by file"):
        instantiate_datamodule(cfg).setup("fit")
