"""``genlab eval`` end to end: run folders, sweeps, comparisons, FID at the end of training, bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli
from eval_fixtures import TINY_CLASSIFIER, cli_env, eval_cache, inception_weights_file, runs  # noqa: F401
from PIL import Image

from genlab.metrics.features import INCEPTION_FILE, file_digest

pytestmark = pytest.mark.slow


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file under ``folder``."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def eval_dirs(run: Path) -> list[Path]:
    return sorted((run / "eval").iterdir()) if (run / "eval").is_dir() else []


def test_train_writes_fid_at_the_end_and_val_fid_during_training(runs):  # noqa: F811
    data = json.loads((runs["data"] / "metrics.json").read_text())
    noise = json.loads((runs["noise"] / "metrics.json").read_text())
    for metrics in (data, noise):
        assert {"fid", "kid_mean", "precision", "recall", "class_coverage"} <= set(metrics)
        assert metrics["fid_features"] == "classifier" and metrics["fid_n"] == 100
    assert data["val/fid"] > 0 and "val/fid" not in noise
    assert data["fid"] < 0.1 * noise["fid"]
    assert data["class_coverage"] > noise["class_coverage"]
    cnn = json.loads((runs["cnn16"] / "metrics.json").read_text())
    assert "fid" not in cnn and "test/acc" in cnn


def test_eval_scores_a_generative_run_and_leaves_the_run_alone(runs, eval_cache, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    shutil.copytree(runs["data"], run)
    before = snapshot(run)
    result = run_cli(["eval", f"run={run}", "n=120", *TINY_CLASSIFIER], tmp_path, env=cli_env(eval_cache))
    assert result.returncode == 0, result.stderr
    (out,) = eval_dirs(run)
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("fid", "kid_mean", "kid_std", "precision", "recall", "class_hist", "class_coverage", "class_kl"):
        assert key in metrics, key
    assert metrics["n"] == 120 and metrics["split"] == "test" and metrics["seed"] == 0
    assert metrics["features"] == "classifier" and metrics["feature_network"].startswith("classifier:")
    assert len(metrics["class_hist"]) == 10 and sum(metrics["class_hist"]) == pytest.approx(1, abs=1e-4)
    assert "fid" in result.stdout and str(out / "metrics.json") in result.stdout
    with Image.open(out / "grid.png") as grid:
        assert grid.size[0] > 200
    after = snapshot(run)
    assert {k: v for k, v in after.items() if not k.startswith("eval")} == before


def test_eval_inception_features_offline_with_a_local_weights_file(runs, eval_cache, inception_weights_file, tmp_path):  # noqa: F811
    run = tmp_path / "1_model.mode=noise"
    shutil.copytree(runs["noise"], run)
    args = [
        "eval",
        f"run='{run}'",  # job folders of a sweep hold '=': Hydra needs the value quoted
        "features=inception",
        f"eval.inception_weights={inception_weights_file}",
        "metrics=[kid,precision_recall]",
        "n=5",
        "eval.max_n=5",
    ]
    result = run_cli(args, tmp_path, env=cli_env(eval_cache, TORCH_HOME=str(tmp_path / "torch")))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((eval_dirs(run)[-1] / "metrics.json").read_text())
    assert metrics["features"] == "inception" and metrics["feature_dim"] == 2048
    assert metrics["feature_network"] == f"inception-v3-compat:{file_digest(inception_weights_file)}"
    assert "kid_mean" in metrics and "fid" not in metrics and "class_hist" not in metrics


def test_eval_of_a_classifier_run_reports_accuracy_per_class(runs, eval_cache, tmp_path):  # noqa: F811
    result = run_cli(["eval", f"run={runs['cnn16']}"], tmp_path, env=cli_env(eval_cache))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((eval_dirs(runs["cnn16"])[-1] / "metrics.json").read_text())
    assert 0 <= metrics["test/acc"] <= 1 and len(metrics["test/per_class_acc"]) == 10
    assert metrics["n"] == 359 and "test/acc" in result.stdout


def check_comparison(folder: Path) -> None:
    rows = list(csv.DictReader((folder / "comparison.csv").open()))
    assert [r["run"] for r in rows] == ["0_model.mode=data", "1_model.mode=noise"]
    assert [r["model.mode"] for r in rows] == ["data", "noise"]  # the override that differs is a column
    assert "model" not in rows[0]  # the same in every run: not a column
    assert float(rows[0]["fid"]) < float(rows[1]["fid"])
    header = (folder / "comparison.md").read_text().split("\n")[2]
    assert header.startswith("| run |") and "| model.mode |" in header and "| fid |" in header
    with Image.open(folder / "comparison.png") as image:
        assert image.width > 2 * 256


def test_eval_sweep_scores_every_run_and_compares_them(runs, eval_cache, tmp_path):  # noqa: F811
    sweep = tmp_path / "sweep"
    shutil.copytree(runs["sweep"], sweep)
    result = run_cli(["eval", f"sweep={sweep}", "n=60", *TINY_CLASSIFIER], tmp_path, env=cli_env(eval_cache))
    assert result.returncode == 0, result.stderr
    check_comparison(sweep)
    assert all(len(eval_dirs(run)) == 1 for run in sweep.iterdir() if run.name[0].isdigit())


def test_eval_multirun_compares_runs_in_outputs_compare(runs, eval_cache, tmp_path):  # noqa: F811
    sweep = tmp_path / "sweep"
    shutil.copytree(runs["sweep"], sweep)
    run_list = ",".join(f"'{p}'" for p in sorted(sweep.iterdir()))
    result = run_cli(["eval", "-m", f"run={run_list}", "n=60", *TINY_CLASSIFIER], tmp_path, env=cli_env(eval_cache))
    assert result.returncode == 0, result.stderr
    (folder,) = (tmp_path / "outputs" / "compare").iterdir()
    check_comparison(folder)


@pytest.fixture
def broken_runs(runs, tmp_path):  # noqa: F811
    """Copies of the replay run: intact, with a corrupt checkpoint."""
    intact = tmp_path / "intact"
    shutil.copytree(runs["data"], intact, ignore=shutil.ignore_patterns("eval"))
    corrupt = tmp_path / "corrupt"
    shutil.copytree(intact, corrupt)
    (corrupt / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    not_a_run = tmp_path / "notarun"
    not_a_run.mkdir()
    (not_a_run / "notes.txt").write_text("hello")
    return {"intact": intact, "corrupt": corrupt, "notarun": not_a_run, "cnn16": runs["cnn16"]}


@pytest.mark.parametrize(
    ("run", "args", "needles"),
    [
        ("notarun", [], ["not a genlab run folder"]),
        ("intact", ["ckpt=best_of_all.ckpt"], ["best_of_all.ckpt", "does not exist"]),
        ("corrupt", [], ["last.ckpt", "corrupt"]),
        ("intact", ["n=10"], ["n > d", "KID"]),
        ("intact", ["features=inception", "eval.download=false"], [INCEPTION_FILE, "features=classifier"]),
        ("intact", ["eval.classifier={cnn16}/checkpoints/last.ckpt"], ["eval.classifier", "image_size=16"]),
        ("intact", ["metrics=[class_acc]"], ["class_acc", "unconditional"]),
    ],
)
def test_bad_input_fails_clearly_and_changes_nothing(broken_runs, eval_cache, tmp_path, run, args, needles):  # noqa: F811
    folder = broken_runs[run]
    before = snapshot(folder)
    args = [a.format(cnn16=broken_runs["cnn16"]) for a in args]
    env = cli_env(eval_cache, TORCH_HOME=str(tmp_path / "empty_torch_home"))
    result = run_cli(["eval", f"run={folder}", *args, *TINY_CLASSIFIER], tmp_path, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    message = [line for line in result.stderr.splitlines() if line.startswith("genlab: error:")]
    assert len(message) == 1, result.stderr
    for needle in needles:
        assert needle in message[0], message[0]
    assert snapshot(folder) == before
