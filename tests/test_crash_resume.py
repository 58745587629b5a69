"""A run killed with SIGKILL resumes from its last step checkpoint; resume restores EMA and grid noise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import FAST, REPO_ROOT, TINY_DDPM, compose_config, model_from_config, run_cli
from pytorch_lightning import Trainer

from genlab.build import instantiate_datamodule, instantiate_model
from genlab.callbacks.image_grid import ImageGrid
from genlab.io import safe_torch_load
from genlab.tasks.train import train

EVERY = 3  # callbacks.checkpoint.every_n_train_steps in the killed run


def logged_steps(event_file: Path, tag: str = "train/loss") -> list[int]:
    """The steps at which ``tag`` was written to a TensorBoard event file."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(event_file))
    events.Reload()
    return [e.step for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def checkpoint_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


@pytest.mark.slow
def test_a_sigkilled_run_resumes_from_its_last_step_checkpoint_and_completes(tmp_path):
    args = [
        "train",
        "model=cnn",
        "model.net.widths=[16,32]",
        "trainer.max_epochs=100",
        "trainer.limit_train_batches=5",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "trainer.log_every_n_steps=1",
        f"callbacks.checkpoint.every_n_train_steps={EVERY}",
        "trainer.enable_progress_bar=false",
        "callbacks.progress_bar=null",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "GENLAB_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen(
        [sys.executable, "-m", "genlab", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            last = next(tmp_path.glob("outputs/train/*/checkpoints/last.ckpt"), None)
            # Atomic writes: whatever last.ckpt is there is complete and readable.
            if last is not None and checkpoint_step(last) >= 2 * EVERY:
                break
            time.sleep(0.05)
        assert process.poll() is None, f"training ended before it was killed: {process.stderr.read()[-2000:]}"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    run = last.parents[1]
    saved_step = checkpoint_step(last)
    assert saved_step % EVERY == 0 and saved_step >= 2 * EVERY
    assert not (run / "metrics.json").exists()  # SIGKILL leaves no status: nothing ran after the kill
    assert not list(run.rglob("*.tmp"))
    (killed_events,) = run.glob("tensorboard/events.out.tfevents.*")
    # Steps the killed process logged beyond its checkpoint (a lower bound: TensorBoard flushes lazily).
    lost = max(logged_steps(killed_events), default=-1) + 1 - saved_step
    assert 0 <= lost < EVERY
    print(f"SIGKILL at checkpoint step {saved_step}: {lost} logged step(s) lost")

    target = saved_step + 4
    resumed = run_cli(["train", f"resume={run}", f"trainer.max_steps={target}"], tmp_path, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert [p.name for p in (tmp_path / "outputs" / "train").iterdir()] == [run.name]
    assert checkpoint_step(run / "checkpoints" / "last.ckpt") == target
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    # The resumed process's curve starts at the checkpoint's step, in the same TensorBoard folder.
    new_events = set(run.glob("tensorboard/events.out.tfevents.*")) - {killed_events}
    steps = [step for events in new_events for step in logged_steps(events)]
    assert min(steps) == saved_step and max(steps) == target - 1


def test_resume_restores_the_ema_weights_and_the_fixed_grid_noise(tmp_path):
    """A tiny DCGAN with EMA (the ddpm's EMA net is the same mechanism: a sub-module in the state)."""
    overrides = [
        "model=dcgan",
        "model.generator.ngf=8",
        "model.discriminator.ndf=8",
        "model.ema_decay=0.9",
        *FAST,
        "logger=none",
    ]
    cfg = compose_config("train", overrides, tmp_path / "run")
    train(cfg)
    checkpoint = safe_torch_load(tmp_path / "run" / "checkpoints" / "last.ckpt")
    state = checkpoint["state_dict"]
    ema_keys = [k for k in state if k.startswith("generator_ema.")]
    live = {k: k.replace("generator_ema.module.", "generator.", 1) for k in ema_keys if ".module." in k}
    assert live and any(not torch.equal(state[k], state[v]) for k, v in live.items())
    (grid_state,) = [v for k, v in checkpoint["callbacks"].items() if k.startswith("ImageGrid")]
    assert grid_state["noise"].shape == (64, 100)

    model = instantiate_model(cfg)
    grid = ImageGrid(tmp_path / "grids", seed=999)  # a different seed: only the checkpoint can give the noise
    trainer = Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        callbacks=[grid],
        limit_val_batches=0,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=instantiate_datamodule(cfg), ckpt_path=tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert torch.equal(grid.noise, grid_state["noise"])
    restored = model.state_dict()
    assert all(torch.equal(restored[k], state[k]) for k in ema_keys)
    assert int(model.generator_ema.n_averaged) == int(state["generator_ema.n_averaged"]) == checkpoint["global_step"]


def test_resume_restores_the_diffusion_ema_net(tmp_path):
    overrides = [
        "model=ddpm",
        *TINY_DDPM,
        "callbacks.diffusion_viz=null",
        *FAST,
        "logger=none",
    ]
    cfg = compose_config("train", overrides, tmp_path / "run")
    train(cfg)
    state = safe_torch_load(tmp_path / "run" / "checkpoints" / "last.ckpt")["state_dict"]
    ema_keys = [k for k in state if k.startswith("ema_net.")]
    live = {k: k.replace("ema_net.module.", "net.", 1) for k in ema_keys if ".module." in k}
    assert live and any(not torch.equal(state[k], state[v]) for k, v in live.items())
    model = instantiate_model(cfg)
    trainer = Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_progress_bar=False, limit_val_batches=0,
                      default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(model, datamodule=instantiate_datamodule(cfg), ckpt_path=tmp_path / "run" / "checkpoints" / "last.ckpt")
    restored = model.state_dict()
    assert all(torch.equal(restored[k], state[k]) for k in ema_keys)


def test_a_checkpoint_of_genlab_0_1_loads_and_resumes(tmp_path):
    """Checkpoints written before the EMA moved onto AveragedModel (plain copies, counter in gan_updates)."""
    overrides = ["model=dcgan", "model.generator.ngf=8", "model.discriminator.ndf=8", *FAST, "logger=none"]
    cfg = compose_config("train", overrides, tmp_path / "run")
    train(cfg)
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint = safe_torch_load(path)
    new = dict(checkpoint["state_dict"])
    old = {k.replace("generator_ema.module.", "generator_ema.", 1): v for k, v in new.items() if "n_averaged" not in k}
    checkpoint["state_dict"] = old
    checkpoint["gan_updates"] = {"d": checkpoint["gan_updates"]["d"], "ema": checkpoint["global_step"]}
    torch.save(checkpoint, tmp_path / "old.ckpt")
    model = model_from_config(cfg, tmp_path / "old.ckpt")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in new.items())
    trainer = Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False, limit_val_batches=0,
                      limit_train_batches=2, default_root_dir=tmp_path)  # fmt: skip
    resumed = instantiate_model(cfg)
    trainer.fit(resumed, datamodule=instantiate_datamodule(cfg), ckpt_path=tmp_path / "old.ckpt")
    assert trainer.global_step == 4 and int(resumed.generator_ema.n_averaged) == 4
