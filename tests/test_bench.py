"""The benchmark suite (scripts/bench) on a tiny configuration: the table and bench.json have the promised structure
(no timing is asserted: speed goals belong to the benchmark itself)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from scripts.bench.__main__ import main
from scripts.bench.common import COLUMNS, Settings, table
from scripts.bench.data_path import bench_data, write_fixture_data


@pytest.fixture(scope="module")
def bench():
    return SimpleNamespace(
        main=main, COLUMNS=COLUMNS, Settings=Settings, table=table, bench_data=bench_data,
        write_fixture_data=write_fixture_data,
    )  # fmt: skip


def test_bench_training_rows_table_and_json(bench, tmp_path, capsys):
    out = tmp_path / "bench.json"
    tiny = ["model.generator.hidden=[16]", "model.discriminator.hidden=[16]", "callbacks.progress_bar=null"]
    argv = ["--quick", "--models", "gan", "--sections", "train", "--out", str(out), "--window", "1", "--windows", "2"]
    result = bench.main([*argv, "--warmup", "1", *tiny, "trainer.enable_progress_bar=false", "logger=none"])
    printed = capsys.readouterr().out
    assert "CPU" in printed and "torch" in printed and "switches" in printed
    header = "| " + " | ".join(bench.COLUMNS) + " |"
    assert header in printed
    saved = json.loads(out.read_text())
    assert set(saved) == {"machine", "switches", "quick", "settings", "rows"}
    assert saved["switches"]["precision"] == "32-true" and saved["machine"]["cpu_cores"] >= 1
    (row,) = saved["rows"]
    assert row["section"] == "train" and row["benchmark"].startswith("gan digits 32px bs64")
    assert len(row["genlab_windows_s"]) == len(row["plain_windows_s"]) == 2
    assert row["genlab"] > 0 and row["baseline"] > 0 and math.isclose(row["ratio"], row["genlab"] / row["baseline"])
    assert row["peak_rss_mb"] > 0 and row["cuda_max_mb"] is None
    assert f"| train | {row['benchmark']} |" in printed
    assert result["rows"][0]["benchmark"] == row["benchmark"]


def test_bench_data_path_rows(bench, tmp_path):
    settings = bench.Settings(1, 1, 1, data_rounds=1, data_images=60, sample_n=1, sample_size=8, gan_n=1, eval_sizes=())
    root = tmp_path / "data"
    bench.write_fixture_data(root, settings.data_images)
    rows = bench.bench_data("mnist", settings, torch.device("cpu"), root, tmp_path)
    assert [r["benchmark"].split(": ")[1] for r in rows] == ["per-sample", "augment.on_device (cpu)"]
    for r in rows:
        assert r["section"] == "data" and r["unit"] == "img/s" and r["genlab"] > 0 and r["baseline"] > 0
    table = bench.table(rows)
    assert len(table.splitlines()) == 2 + len(rows) and "mnist 28px augment=basic" in table
    assert Path(root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
