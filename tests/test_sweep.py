"""Multirun sweeps: one folder per job and a summary table at the end."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import FAST, run_cli

from genlab.callbacks.sweep import aggregate, collect_runs, write_summary


def _fake_job(sweep, name, overrides, metrics):
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / "metrics.json").write_text(json.dumps(metrics))


def test_summary_tabulates_runs_and_averages_over_seeds(tmp_path):
    _fake_job(tmp_path, "0_augment=none,seed=1", ["augment=none", "seed=1"], {"test/acc": 0.90, "train/loss": 1.0})
    _fake_job(tmp_path, "1_augment=none,seed=2", ["augment=none", "seed=2"], {"test/acc": 0.94})
    _fake_job(tmp_path, "2_augment=basic,seed=1", ["augment=basic", "seed=1"], {"test/acc": 0.97})
    rows = collect_runs(tmp_path)
    assert [r["test/acc"] for r in rows] == [0.90, 0.94, 0.97]
    assert all("train/loss" not in r for r in rows)
    groups = {g["overrides"]: g for g in aggregate(rows)}
    assert groups["augment=none"]["runs"] == 2
    assert groups["augment=none"]["test/acc"] == "0.9200 ± 0.0283"
    text = write_summary(tmp_path)
    assert "Mean ± std over seeds" in text
    assert (tmp_path / "summary.md").read_text() == text
    assert (tmp_path / "summary.csv").read_text().splitlines()[0].startswith("job,overrides,test/acc")


def test_size_sweep_gets_an_accuracy_vs_size_plot(tmp_path):
    from PIL import Image

    from genlab.callbacks.sweep_plot import size_series

    for i, (arm, size, seed, acc) in enumerate(
        [("none", "10", 1, 0.70), ("none", "10", 2, 0.74), ("none", "null", 1, 0.97), ("generative", "10", 1, 0.80)]
    ):
        overrides = [f"data.train_per_class={size}", f"augment={arm}", f"seed={seed}"]
        _fake_job(tmp_path, f"{i}_job", overrides, {"test/acc": acc, "generator/fid": 9.0})
    rows = collect_runs(tmp_path)
    series = size_series(rows)
    assert series == {"augment=none": {"10": [0.70, 0.74], "all": [0.97]}, "augment=generative": {"10": [0.80]}}
    text = write_summary(tmp_path)
    assert "accuracy_vs_size.png" in text and "generator/fid" in text
    with Image.open(tmp_path / "accuracy_vs_size.png") as plot:
        assert plot.size[0] > 400 and plot.size[1] > 300


def test_sweep_without_sizes_gets_no_plot(tmp_path):
    _fake_job(tmp_path, "0_seed=1", ["augment=none", "seed=1"], {"test/acc": 0.9})
    write_summary(tmp_path)
    assert not (tmp_path / "accuracy_vs_size.png").exists()


@pytest.mark.slow
def test_multirun_sweep_writes_one_folder_per_job_and_a_summary(tmp_path):
    result = run_cli(["train", "-m", "model=cnn", "augment=none,basic", *FAST], tmp_path)
    assert result.returncode == 0, result.stderr
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    assert sweep.name.endswith("_cnn_digits")
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert [j.split(",")[0] for j in jobs] == ["0_augment=none", "1_augment=basic"]
    for job in jobs:
        assert (sweep / job / "metrics.json").is_file() and (sweep / job / "checkpoints" / "last.ckpt").is_file()
    summary = (sweep / "summary.md").read_text()
    assert "augment=none" in summary and "augment=basic" in summary and "test/acc" in summary
    assert "test/acc" in result.stdout
