"""The shared adversarial toolkit: ``max_steps`` counts generator updates for every adversarial model,
and the constant-then-linear LR rule holds across epochs and across a resume."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config
from omegaconf import open_dict

from genlab.io import safe_torch_load
from genlab.models.adversarial import LinearDecay
from genlab.tasks.train import train

PIX2PIX = ["model=pix2pix", "data=edges2digits", "model.generator.ngf=8", "model.discriminator.ndf=8"]
PIX2PIX += ["data.batch_size=8", "model.grid_size=0", "eval.n_at_end=0"]
GAN = ["model=gan", "model.generator.hidden=[16]", "model.discriminator.hidden=[16]", "eval.n_at_end=0"]


def optimizer_steps(checkpoint: dict) -> list[int]:
    """Adam's step count of each optimizer in a checkpoint (generator first)."""
    return [int(next(iter(state["state"].values()))["step"]) for state in checkpoint["optimizer_states"]]


@pytest.mark.parametrize(("model", "n_critic"), [(PIX2PIX, 1), (GAN, 1), ([*GAN, "model/loss=wgan_gp"], 5)])
def test_max_steps_counts_generator_updates(tmp_path, model, n_critic):
    cfg = compose_config("train", [*model, *FAST, "trainer.limit_train_batches=20", "trainer.max_steps=3"], tmp_path)
    with open_dict(cfg):
        cfg.trainer.max_epochs = 10
    metrics = train(cfg)
    checkpoint = safe_torch_load(Path(cfg.paths.run_dir) / "checkpoints" / "last.ckpt")
    assert metrics["status"] == "completed" and checkpoint["global_step"] == 3
    g_steps, d_steps = optimizer_steps(checkpoint)
    assert (g_steps, d_steps) == (3, 3 * n_critic)


def lr_per_epoch(run: Path) -> list[float]:
    """train/lr of every epoch, over the CSV logs of every training segment (a resume writes csv/resume_<k>/)."""
    rows = []
    for path in sorted(run.glob("csv/**/metrics.csv"), key=lambda p: (len(p.parts), str(p))):
        with open(path) as handle:
            rows += [float(r["train/lr"]) for r in csv.DictReader(handle) if r.get("train/lr")]
    return rows


def pix2pix_cfg(run: Path, epochs: int):
    overrides = [*PIX2PIX, *FAST, "logger=csv", "model.n_epochs=2", "model.n_epochs_decay=2"]
    return compose_config("train", [*overrides, f"trainer.max_epochs={epochs}", "trainer.limit_train_batches=1"], run)


def test_pix2pix_lr_decays_linearly_across_epochs_and_after_a_resume(tmp_path):
    base = 0.0002
    expected = [base * LinearDecay(2, 2)(epoch) for epoch in range(4)]
    straight = tmp_path / "straight"
    train(pix2pix_cfg(straight, 4))
    assert lr_per_epoch(straight) == pytest.approx(expected)

    resumed = tmp_path / "resumed"
    train(pix2pix_cfg(resumed, 2))
    cfg = pix2pix_cfg(resumed, 4)
    with open_dict(cfg):
        cfg.resume = str(resumed)
    train(cfg)
    assert lr_per_epoch(resumed) == pytest.approx(expected)
    final = safe_torch_load(resumed / "checkpoints" / "last.ckpt")
    assert [s["last_epoch"] for s in final["lr_schedulers"]] == [4, 4]
    assert torch.tensor(final["optimizer_states"][0]["param_groups"][0]["lr"]) == pytest.approx(
        base * LinearDecay(2, 2)(4)
    )
