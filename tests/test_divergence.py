"""A NaN loss stops every model family with a message naming step and loss, keeping the last good checkpoint.

(The GAN's own test is in test_gan.py.) NaN is injected from the third training batch on: the first
epoch (two batches) ends normally and writes its checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import FAST, TINY_DDPM

from genlab.errors import TrainingDivergedError
from genlab.io import safe_torch_load
from genlab.models.classifier import ClassifierModule
from genlab.models.ddpm import DiffusionModule
from genlab.models.losses import BCELoss
from genlab.tasks.train import train

DDPM_TINY = [
    *TINY_DDPM,
    "callbacks.diffusion_viz=null",
]
CASES = {
    "cnn": (["model=cnn", "model.net.widths=[8]"], "train/loss"),
    "ddpm": (["model=ddpm", *DDPM_TINY], "train/loss"),
    "pix2pix": (
        [
            "model=pix2pix",
            "data=edges2digits",
            "model.generator.ngf=8",
            "model.discriminator.ndf=8",
            "data.batch_size=8",
        ],
        "loss_d",
    ),
}


def inject_nan(monkeypatch: pytest.MonkeyPatch, model: str) -> None:
    """Make the training loss NaN from the third training batch on."""
    calls = {"n": 0}

    def poisoned(value: torch.Tensor, per_batch: int) -> torch.Tensor:
        calls["n"] += 1
        return value * float("nan") if calls["n"] > 2 * per_batch else value

    if model == "cnn":
        forward = ClassifierModule.forward
        monkeypatch.setattr(
            ClassifierModule,
            "forward",
            lambda self, x: poisoned(forward(self, x), 1) if self.training else forward(self, x),
        )
    elif model == "ddpm":
        loss = DiffusionModule.diffusion_loss

        def diffusion_loss(self, net, x0, labels, generator=None):
            value = loss(self, net, x0, labels, generator)
            return poisoned(value, 1) if net is self.net else value

        monkeypatch.setattr(DiffusionModule, "diffusion_loss", diffusion_loss)
    else:
        d_loss = BCELoss.discriminator_loss

        def discriminator_loss(self, *args):
            loss, *outputs = d_loss(self, *args)
            return (poisoned(loss, 1), *outputs)

        monkeypatch.setattr(BCELoss, "discriminator_loss", discriminator_loss)


@pytest.mark.parametrize("model", sorted(CASES))
def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(cfg_factory, monkeypatch, model):
    overrides, loss_name = CASES[model]
    cfg = cfg_factory("train", [*overrides, *FAST, "trainer.max_epochs=3", "logger=none"])
    inject_nan(monkeypatch, model)
    with pytest.raises(TrainingDivergedError) as info:
        train(cfg)
    run = Path(cfg.paths.run_dir)
    checkpoint = safe_torch_load(run / "checkpoints" / "last.ckpt")
    assert checkpoint["epoch"] == 0 and checkpoint["global_step"] > 0  # the first epoch's checkpoint
    message = str(info.value)
    assert f"{loss_name}" in message and "nan" in message and f"at step {checkpoint['global_step']}" in message
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and metrics["global_step"] == checkpoint["global_step"]
