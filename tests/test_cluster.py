"""Sweeps through Hydra's submitit launcher (``submitit_local``: each job in its own process, as on Slurm)."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import FAST, run_cli

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")


@pytest.mark.slow
def test_submitit_local_sweep_runs_each_job_in_its_folder_and_writes_the_summary(tmp_path):
    result = run_cli(
        [
            "train",
            "-m",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=5",
            "model=cnn",
            "model.net.widths=[8]",
            "seed=1,2",
            *FAST,
        ],
        tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [job.name[:2] for job in jobs] == ["0_", "1_"]
    for job, seed in zip(jobs, (1, 2), strict=True):
        assert f"seed={seed}" in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert json.loads((job / "metrics.json").read_text())["status"] == "completed"
        assert (job / "checkpoints" / "last.ckpt").is_file()
    # Each job ran in a submitit worker process, with its own log there.
    assert len(list((sweep / ".submitit").glob("*/*_0_log.out"))) == 2
    summary = (sweep / "summary.md").read_text()
    assert summary.count("| completed |") == 2 and "seed=1" in summary and "seed=2" in summary
