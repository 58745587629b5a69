"""Datasets read from fixture files in their real on-disk formats through the real loaders."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from conftest import data_overrides
from fixture_data import write_mnist

from genlab.build import instantiate_datamodule
from genlab.data.torchvision_sets import read_cifar_batch
from genlab.errors import DatasetNotFoundError, GenlabError

EXPECTED = {
    # name: (channels, image_size, num_classes, {split: size})
    "mnist": (1, 28, 10, {"train": 50, "val": 10, "test": 20}),
    "fashion_mnist": (1, 28, 10, {"train": 50, "val": 10, "test": 20}),
    "cifar10": (3, 32, 10, {"train": 50, "val": 10, "test": 12}),
    "celeba": (3, 64, 0, {"train": 8, "val": 2, "test": 2}),
    "image_folder": (3, 64, 2, None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_dataset_loads_through_its_real_reader(cfg_factory, data_root, name):
    channels, size, num_classes, sizes = EXPECTED[name]
    dm = instantiate_datamodule(cfg_factory("train", data_overrides(name, data_root)), train=False)
    assert (dm.channels, dm.image_size, dm.num_classes) == (channels, size, num_classes)
    if sizes:
        assert {split: len(dm.dataset(split)) for split in sizes} == sizes
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape[1:] == (channels, size, size)
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert images.min() >= -1 and images.max() <= 1
    if num_classes:
        assert labels.min() >= 0 and labels.max() < num_classes
    else:
        assert (labels == -1).all()


def test_digits_default_split_is_fixed_and_disjoint(cfg_factory):
    dm = instantiate_datamodule(cfg_factory("train", []), train=False)
    sizes = {split: len(dm.dataset(split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 1258, "val": 180, "test": 359}
    again = instantiate_datamodule(cfg_factory("train", []), train=False)
    assert torch.equal(dm.dataset("test").images, again.dataset("test").images)
    # Images are the resized 8×8 digits: 32×32, 1 channel, whole batches per index list.
    images, labels = dm.dataset("train")[list(range(5))]
    assert images.shape == (5, 1, 32, 32) and labels.shape == (5,)


def test_mnist_labels_match_their_images(cfg_factory, data_root):
    dm = instantiate_datamodule(cfg_factory("train", data_overrides("mnist", data_root)), train=False)
    images, labels = dm.dataset("test")[list(range(20))]
    # The fixture's brightness encodes the label: mean pixel ≈ 25·label (+ noise < 5) in 0..255.
    brightness = (images.add(1).div(2).mul(255)).mean(dim=(1, 2, 3))
    assert torch.allclose(brightness, labels.float() * 25 + 2, atol=3)


def test_missing_files_name_the_path_and_the_manual_step(cfg_factory, tmp_path):
    cfg = cfg_factory("train", ["data=mnist", "data.download=false", f"paths.data_dir={tmp_path / 'empty'}"])
    with pytest.raises(DatasetNotFoundError) as info:
        instantiate_datamodule(cfg).setup()
    message = str(info.value)
    assert str(tmp_path / "empty" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "data.root" in message


@pytest.mark.parametrize("name", ["cifar10", "celeba"])
def test_missing_folder_datasets_explain_what_to_do(cfg_factory, tmp_path, name):
    download = ["data.download=false"] if name == "cifar10" else []
    cfg = cfg_factory("train", [f"data={name}", f"paths.data_dir={tmp_path}", *download])
    with pytest.raises(DatasetNotFoundError, match=r"put them|unzip them"):
        instantiate_datamodule(cfg).setup()


def test_cifar_reader_refuses_pickled_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Exploit(), "labels": [0]}))
    with pytest.raises(GenlabError, match="not a CIFAR-10 python batch"):
        read_cifar_batch(path)


def test_image_folder_class_count_must_match(cfg_factory, data_root):
    overrides = [*data_overrides("image_folder", data_root), "data.num_classes=5"]
    with pytest.raises(GenlabError, match=r"data\.num_classes=2"):
        instantiate_datamodule(cfg_factory("train", overrides)).setup()


def test_augmentation_touches_training_batches_only(cfg_factory):
    cfg = cfg_factory("train", ["augment=strong"])
    dm = instantiate_datamodule(cfg)
    dm.setup()
    assert dm.dataset("train").transform is not None
    assert dm.dataset("val").transform is None and dm.dataset("test").transform is None
    plain = instantiate_datamodule(cfg_factory("train", ["augment=none"]))
    index = list(range(8))
    torch.manual_seed(0)
    assert not torch.equal(dm.dataset("train")[index][0], plain.dataset("train")[index][0])
    assert torch.equal(dm.dataset("test")[index][0], plain.dataset("test")[index][0])


def test_idx_reader_resizes_to_the_configured_size(cfg_factory, tmp_path):
    write_mnist(tmp_path, "MNIST", n_train=30, n_test=10)
    overrides = ["data=mnist", "data.download=false", "data.val_size=5", f"paths.data_dir={tmp_path}"]
    dm = instantiate_datamodule(cfg_factory("train", [*overrides, "data.image_size=32"]), train=False)
    assert dm.dataset("train")[[0]][0].shape == (1, 1, 32, 32)


def test_train_per_class_keeps_a_fixed_balanced_subset(cfg_factory):
    dm = instantiate_datamodule(cfg_factory("train", ["data.train_per_class=10"]), train=False)
    labels = dm.dataset("train").labels
    assert torch.equal(torch.bincount(labels), torch.full((10,), 10))
    again = instantiate_datamodule(cfg_factory("train", ["data.train_per_class=10"]), train=False)
    assert torch.equal(dm.dataset("train").images, again.dataset("train").images)
    full = instantiate_datamodule(cfg_factory("train", []), train=False)
    assert len(dm.dataset("test")) == len(full.dataset("test"))
    assert torch.equal(dm.dataset("test").images, full.dataset("test").images)


@pytest.mark.parametrize(("value", "needle"), [(1000, "larger than"), (0, "at least 1")])
def test_train_per_class_out_of_range_is_refused(cfg_factory, value, needle):
    with pytest.raises(GenlabError, match=needle):
        instantiate_datamodule(cfg_factory("train", [f"data.train_per_class={value}"])).setup()
