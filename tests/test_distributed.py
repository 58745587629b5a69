"""DDP with 2 CPU processes (gloo) through the CLI, in a subprocess with a timeout.

(DDP inside pytest would re-run pytest itself for rank 1.) Checked: one folder per run or sweep job
and nothing elsewhere (rank 1 neither restarts the sweep nor writes a folder of its own), one
metrics.json / grid set / checkpoint set per run, the rank-0 FID at the end of a DDP run, the
process group torn down between sweep jobs (the second job would hang otherwise), and a sweep over
``model=`` kept in one sweep folder.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from conftest import only_run_dir, run_cli
from eval_fixtures import TINY_CLASSIFIER

SMALL = [
    "trainer=ddp_cpu",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "callbacks.progress_bar=null",
    "eval.n_at_end=40",
    *TINY_CLASSIFIER,
]


def check_run(run, model: str) -> None:
    """One metrics.json (completed), one checkpoint set, events and grids from rank 0 only, rank 1's log."""
    files = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert len([f for f in files if f.endswith("metrics.json")]) == 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed", metrics
    checkpoints = sorted(f for f in files if f.startswith("checkpoints/"))
    # best.ckpt only where a metric ranks the epochs (the classifier's val/acc), not for GANs
    assert checkpoints == (
        ["checkpoints/last.ckpt"] if model == "gan" else ["checkpoints/best.ckpt", "checkpoints/last.ckpt"]
    )
    # Two ranks, two batches each: the step count is per process, as in one-process training.
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    assert "train_ddp_process_1.log" in files  # rank 1 ran inside this run's folder
    events = [f for f in files if f.startswith("tensorboard/events.out.tfevents")]
    assert events and len({f.split(".")[-2] for f in events}) == 1  # written by one process (rank 0)
    grids = sorted(f for f in files if f.startswith("samples/"))
    if model == "gan":
        assert grids == ["samples/epoch_0001.png", "samples/progress.png"]
        assert metrics["fid_n"] == 40 and metrics["fid"] > 0  # scored on rank 0 after DDP was torn down
    else:
        assert grids == [] and 0 <= metrics["test/acc"] <= 1


@pytest.mark.slow
def test_ddp_training_of_the_classifier_writes_one_run_folder(tmp_path):
    result = run_cli(["train", "model=cnn", *SMALL], tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["train"]
    check_run(only_run_dir(tmp_path), "cnn")


@pytest.mark.slow
def test_ddp_sweep_of_a_gan_and_the_classifier_runs_each_job_once_and_tears_ddp_down(tmp_path):
    result = run_cli(["train", "-m", "model=gan,cnn", *SMALL], tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = tmp_path / "outputs"
    assert [p.name for p in outputs.iterdir()] == ["multirun"], "a child rank wrote a folder of its own"
    (sweep,) = (outputs / "multirun").iterdir()
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [job.name[:2] for job in jobs] == ["0_", "1_"]
    overrides = [yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) for job in jobs]
    assert [[o for o in job if o.startswith("model=")] for job in overrides] == [["model=gan"], ["model=cnn"]]
    for job, model in zip(jobs, ("gan", "cnn"), strict=True):
        check_run(job, model)
    assert (sweep / "summary.md").read_text().count("| completed |") == 2  # one sweep folder for both models
