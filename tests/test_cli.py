"""The command-line surface: dispatch, help, errors without tracebacks, run folders."""

from __future__ import annotations

import json

import pytest
from conftest import FAST, only_run_dir, run_cli


def test_help_lists_every_command(tmp_path):
    result = run_cli(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("train", "sample", "eval", "augment"):
        assert f"  {command}" in result.stdout


def test_unknown_command_prints_the_list_and_exits_2(tmp_path):
    result = run_cli(["trian"], tmp_path)
    assert result.returncode == 2
    assert "unknown command 'trian'" in result.stderr
    assert "train" in result.stderr and "augment" in result.stderr


def test_train_help_shows_config_groups(tmp_path):
    result = run_cli(["train", "--help"], tmp_path)
    assert result.returncode == 0
    for group in ("data:", "model:", "augment:", "noise_dist:", "schedule:", "trainer:"):
        assert group in result.stdout


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """A CNN run trained through the CLI (shared by the tests of this module)."""
    root = tmp_path_factory.mktemp("cnn_run")
    result = run_cli(["train", "model=cnn", *FAST], root)
    assert result.returncode == 0, result.stderr
    return only_run_dir(root)


def _snapshot(folder):
    """Modification times of the run's own files (sample/ and eval/ output folders excluded)."""
    return {
        p: p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and not {"sample", "eval"} & set(p.relative_to(folder).parts)
    }


@pytest.mark.slow
def test_train_writes_the_run_folder_of_the_contract(cnn_run):
    run = cnn_run
    assert run.name.endswith("_cnn_digits")
    for part in (".hydra/config.yaml", ".hydra/overrides.yaml", "train.log", "checkpoints/last.ckpt", "metrics.json"):
        assert (run / part).exists(), part
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert 0.0 <= metrics["test/acc"] <= 1.0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "model=nosuchmodel"], "nosuchmodel"),
        (["train", "data=nosuchdata"], "nosuchdata"),
        (["train", "data=mnist", "data.download=false", *FAST], "MNIST"),
        (["train", "model=cnn", "data.image_size=6", *FAST], "image_size=6"),
        (["train", "augment=basic", "augment.transforms.0.p=1.5", *FAST], "`p` should be a floating point value"),
        (["train", "augment=strong", "augment.transforms.2.degrees=400", *FAST], "augment.transforms.2.degrees=400"),
        (["train", "augment=basic", "augment.transforms.2.brightness=3", *FAST], "augment.transforms.2.brightness=3"),
        (["sample", "run=does/not/exist"], "not a genlab run folder"),
        (["eval", "run=does/not/exist"], "not a genlab run folder"),
    ],
)
def test_bad_input_fails_with_one_clear_message(tmp_path, args, needle):
    result = run_cli(args, tmp_path, timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert needle in result.stderr, result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([], "not available for model=cnn"),
        (["ckpt=missing.ckpt"], "does not exist"),
        (["ckpt=CORRUPT"], "corrupt"),
    ],
)
def test_sample_refuses_bad_runs_without_touching_them(cnn_run, tmp_path, extra, needle):
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes((cnn_run / "checkpoints" / "last.ckpt").read_bytes()[:2000])
    before = _snapshot(cnn_run)
    args = ["sample", f"run={cnn_run}", *(e.replace("CORRUPT", str(corrupt)) for e in extra)]
    result = run_cli(args, tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and needle in result.stderr, result.stderr
    assert _snapshot(cnn_run) == before
