"""`train resume=DIR` continues a run with its own config; run status is recorded."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_cli

QUIET = ["trainer.enable_progress_bar=false", "callbacks.progress_bar=null", "trainer.limit_val_batches=1"]


@pytest.mark.slow
def test_resume_continues_the_step_count_and_keeps_the_saved_config(tmp_path):
    first = run_cli(["train", "model=cnn", "trainer.max_epochs=1", "trainer.limit_train_batches=3", *QUIET], tmp_path)
    assert first.returncode == 0, first.stderr
    (run,) = (tmp_path / "outputs" / "train").iterdir()
    saved_config = (run / ".hydra" / "config.yaml").read_text()
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3

    resumed = run_cli(
        ["train", f"resume={run}", "trainer.max_epochs=2", "trainer.limit_train_batches=3", *QUIET], tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "Restored all states" in resumed.stderr + resumed.stdout
    assert list((tmp_path / "outputs" / "train").iterdir()) == [run]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    assert (run / ".hydra" / "config.yaml").read_text() == saved_config
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) >= 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["resume=no/such/run"], "not a genlab run folder"),
        (["resume=RUN", "model=cnn"], "'model=cnn' cannot change"),
        (["resume=RUN", "-m"], "'-m' cannot change"),
        (["resume=EMPTY"], "no checkpoints/last.ckpt"),
    ],
)
def test_resume_refuses_what_it_cannot_do(tmp_path, args, needle):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (run / "checkpoints").mkdir()
    empty = tmp_path / "empty"
    (empty / ".hydra").mkdir(parents=True)
    (empty / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    args = [a.replace("RUN", str(run)).replace("EMPTY", str(empty)) for a in args]
    result = run_cli(["train", *args], tmp_path)
    assert result.returncode == 2
    assert needle in result.stderr and "Traceback" not in result.stderr, result.stderr
