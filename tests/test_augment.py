"""Augmentation transforms, pipelines and the `genlab augment` preview."""

from __future__ import annotations

import pytest
import torch
from conftest import FAST, run_cli
from hydra.utils import instantiate
from PIL import Image

from genlab.augment import Cutout, SaltAndPepperNoise
from genlab.errors import GenlabError
from genlab.tasks.train import train


def test_salt_and_pepper_replaces_the_configured_share_of_pixels():
    torch.manual_seed(0)
    image = torch.full((3, 64, 64), 0.5)
    out = SaltAndPepperNoise(amount=0.1, salt_ratio=0.5)(image)
    changed = (out != 0.5).any(dim=0)
    assert abs(changed.float().mean().item() - 0.1) < 0.02
    # Every channel of a hit pixel gets the same value, black or white.
    hits = out[:, changed]
    assert ((hits == 0) | (hits == 1)).all() and (hits == hits[0]).all()


def test_cutout_blanks_one_square_at_most_size_squared():
    torch.manual_seed(0)
    image = torch.ones(1, 32, 32)
    for _ in range(20):
        zeroed = (Cutout(size=8, p=1.0)(image) == 0).sum().item()
        assert 0 < zeroed <= 64
    assert torch.equal(Cutout(size=8, p=0.0)(image), image)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SaltAndPepperNoise(amount=1.5),
        lambda: SaltAndPepperNoise(p=-0.1),
        lambda: Cutout(size=0),
        lambda: Cutout(p=2.0),
    ],
)
def test_out_of_range_strengths_are_refused(make):
    with pytest.raises(GenlabError, match=r"out of range|at least"):
        make()


@pytest.mark.parametrize("option", ["basic", "strong"])
def test_pipelines_keep_shape_and_range_and_change_images(cfg_factory, option):
    augmentation = instantiate(cfg_factory("train", [f"augment={option}"]).augment)
    torch.manual_seed(0)
    image = torch.rand(1, 32, 32)
    outs = [augmentation.preview(image) for _ in range(4)]
    for out in outs:
        assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1
    assert not all(torch.equal(outs[0], o) for o in outs[1:])


def test_mixup_mixes_images_and_labels(cfg_factory):
    augmentation = instantiate(cfg_factory("train", ["augment=mixup"]).augment)
    torch.manual_seed(0)
    images, labels = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 10
    mixed, soft = augmentation.apply_batch(images, labels)
    assert mixed.shape == images.shape and soft.shape == (8, 10)
    assert torch.allclose(soft.sum(dim=1), torch.ones(8))
    assert (soft.max(dim=1).values < 1).all()


def test_classifier_trains_on_mixed_labels(cfg_factory):
    metrics = train(cfg_factory("train", ["model=cnn", "augment=mixup", "logger=none", *FAST]))
    assert metrics["status"] == "completed" and "test/acc" in metrics


def test_augment_command_writes_a_preview_grid(tmp_path):
    result = run_cli(["augment", "augment=strong", "n=3", "versions=4"], tmp_path)
    assert result.returncode == 0, result.stderr
    previews = list((tmp_path / "outputs" / "augment").glob("*/preview.png"))
    assert len(previews) == 1 and str(previews[0].name) in result.stdout
    width, height = Image.open(previews[0]).size
    # 3 rows × (1 original + 4 versions) of 32-px digits with 2-px padding.
    assert (width, height) == (2 + 5 * 34, 2 + 3 * 34)
