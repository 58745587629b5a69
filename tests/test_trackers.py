"""MLflow (its local SQLite store) and W&B (offline) through ``logger=``: metrics, images, final figures,
the resolved config; a missing package and an unreachable tracking server are refused before training."""

from __future__ import annotations

import json
import socket
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config, run_cli
from eval_fixtures import eval_cache, make_run  # noqa: F401
from refusals import assert_refused

TINY_DCGAN = [
    "model=dcgan",
    "model.generator.ngf=8",
    "model.discriminator.ndf=8",
    "trainer.max_epochs=2",
    "eval.n_at_end=100",
]
BLOCK = 32768  # the .wandb transaction log: LevelDB's log format (32 KiB blocks, 7-byte record headers)


def wandb_records(path: Path) -> list[bytes]:
    """The records of a W&B transaction log (``run-<id>.wandb``), reassembled from their fragments."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:7]
    records, pending, offset = [], b"", 7
    while offset + 7 <= len(data):
        if BLOCK - offset % BLOCK < 7:  # a block's tail too short for a header is padding
            offset += BLOCK - offset % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            records.append(pending)
    return records


def wandb_history(run_folder: Path) -> list[dict]:
    """Every ``history`` row (key → value) that the offline run logged."""
    from wandb.proto import wandb_internal_pb2

    rows = []
    for raw in wandb_records(next(run_folder.glob("run-*.wandb"))):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            items = record.history.item
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items})
    return rows


def test_mlflow_local_store_holds_runs_metrics_params_and_images(tmp_path, eval_cache):  # noqa: F811
    from mlflow import MlflowClient

    run_dir = make_run(tmp_path / "out" / "run", [*TINY_DCGAN, "logger=[tensorboard,mlflow]"], eval_cache)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    store = tmp_path / "out" / "mlflow.db"
    assert store.is_file() and (run_dir / "tensorboard").is_dir()
    client = MlflowClient(tracking_uri=f"sqlite:///{store}")
    [run] = client.search_runs([client.get_experiment_by_name("genlab").experiment_id])
    assert run.info.run_name == run_dir.name and run.info.status == "FINISHED"
    assert run.data.tags["genlab.run_dir"] == str(run_dir.resolve())
    assert run.data.params["model/name"] == "dcgan" and run.data.params["model/generator/ngf"] == "8"
    assert run.data.metrics["fid"] == pytest.approx(metrics["fid"])
    losses = client.get_metric_history(run.info.run_id, "train/loss_g")
    assert len({m.step for m in losses}) >= 2  # one per logging step (not repeated with the final figures)
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images") if a.path.endswith(".png")]
    assert len(images) == 2, images  # the sample grid of each of the 2 epochs
    local = Path(client.download_artifacts(run.info.run_id, images[0], str(tmp_path)))
    from PIL import Image

    assert Image.open(local).size == Image.open(run_dir / "samples" / "epoch_0001.png").size
    assert (tmp_path / "out" / "mlartifacts").is_dir()


def test_wandb_offline_run_folder_holds_the_metrics(tmp_path, eval_cache, monkeypatch):  # noqa: F811
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no netrc: no key → offline
    assert compose_config("train", ["logger=wandb"], tmp_path / "x").logger.wandb.offline is True
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    assert compose_config("train", ["logger=wandb"], tmp_path / "x").logger.wandb.offline is False
    monkeypatch.delenv("WANDB_API_KEY")
    monkeypatch.setenv("WANDB_MODE", "offline")  # Lightning sets it for offline runs; restored after the test
    run_dir = make_run(tmp_path / "run", [*TINY_DCGAN, "logger=wandb"], eval_cache)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    [folder] = (run_dir / "wandb").glob("offline-run-*")
    deadline = time.monotonic() + 60  # W&B's service process may still be writing the last records
    while not any("fid" in row for row in wandb_history(folder)) and time.monotonic() < deadline:
        time.sleep(0.5)
    rows = wandb_history(folder)
    final = next(row for row in reversed(rows) if "fid" in row)
    assert final["fid"] == pytest.approx(metrics["fid"]) and final["trainer/global_step"] == 4  # 2 epochs × 2 batches
    assert any("train/loss_d" in row for row in rows)
    assert len(list((folder / "files" / "media" / "images").glob("samples_*.png"))) == 2


def test_mlflow_missing_package_is_refused_naming_the_extra(tmp_path):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['mlflow'] = None\n")
    from conftest import REPO_ROOT

    result = run_cli(["train", "logger=mlflow"], tmp_path, env={"PYTHONPATH": f"{hide}:{REPO_ROOT}"})
    assert_refused(result, "pip install 'genlab[mlflow]'", {}, [tmp_path / "outputs" / "train"])


def test_unreachable_tracking_uri_fails_fast_with_the_uri(tmp_path):
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    result = run_cli(["train", "logger=mlflow", f"logger.mlflow.tracking_uri={uri}"], tmp_path)
    assert_refused(result, f"logger.mlflow.tracking_uri={uri}", {}, [tmp_path / "outputs" / "train"])
    assert "training was not started" in result.stderr and time.monotonic() - started < 120


def test_log_image_sends_one_image_to_tensorboard_and_mlflow_through_their_apis(tmp_path):
    from mlflow import MlflowClient
    from PIL import Image
    from pytorch_lightning.loggers import MLFlowLogger, TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from genlab.callbacks.trackers import log_image

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_logger = MLFlowLogger(experiment_name="t", tracking_uri=store, artifact_location=str(tmp_path / "art"))
    board = TensorBoardLogger(tmp_path, name="tb", version="")
    grid = torch.linspace(0, 1, 12).view(1, 3, 4)  # one channel, as make_grid leaves a grey grid of one image
    log_image([board, mlflow_logger], "diffusion/forward", grid, step=3)
    board.experiment.flush()

    client = MlflowClient(tracking_uri=store)
    [png] = [a.path for a in client.list_artifacts(mlflow_logger.run_id, "images") if a.path.endswith(".png")]
    assert png.startswith("images/diffusion_forward+step+3+")
    saved = np.asarray(Image.open(client.download_artifacts(mlflow_logger.run_id, png, str(tmp_path))))
    assert np.array_equal(saved, (grid[0] * 255).round().byte().numpy())
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    [image] = events.Images("diffusion/forward")
    assert image.step == 3 and (image.width, image.height) == (4, 3)
