"""Same seed and config on CPU → bit-identical weights after N steps and identical samples."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import FAST, TINY_DDPM, compose_config, model_from_config

from genlab.io import safe_torch_load
from genlab.tasks.train import train

CASES = {
    "gan": ["model=gan", "model.generator.hidden=[32,64]", "model.discriminator.hidden=[32]"],
    "ddpm": [
        "model=ddpm",
        *TINY_DDPM,
        "callbacks.diffusion_viz.n=4",
        "callbacks.diffusion_viz.grid_steps=3",
        "callbacks.diffusion_viz.n_reconstruct=2",
    ],
}


def train_once(root: Path, model: str, seed: int) -> Path:
    run = root / "run"
    cfg = compose_config(
        "train", [*CASES[model], *FAST, "trainer.limit_train_batches=3", "logger=none", f"seed={seed}"], run
    )
    train(cfg)
    return run


def grids(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run / "samples").glob("epoch_*.png"))}


@pytest.mark.parametrize("model", sorted(CASES))
def test_the_same_seed_gives_identical_weights_and_samples(tmp_path, model):
    runs = [train_once(tmp_path / name, model, seed) for name, seed in (("a", 7), ("b", 7), ("c", 8))]
    states = [safe_torch_load(run / "checkpoints" / "last.ckpt")["state_dict"] for run in runs]
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert any(not torch.equal(states[0][k], states[2][k]) for k in states[0])  # the seed matters

    assert grids(runs[0]) and grids(runs[0]) == grids(runs[1])  # the per-epoch grid, byte for byte
    samples = []
    for run in runs[:2]:
        cfg = compose_config("train", [*CASES[model], *FAST], run)
        net = model_from_config(cfg, run / "checkpoints" / "last.ckpt")
        options = {"sampler": "ddim", "steps": 3} if model == "ddpm" else {}
        samples.append(net.generate(6, generator=torch.Generator().manual_seed(3), **options))
    assert torch.equal(samples[0], samples[1])
