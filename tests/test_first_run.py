"""What a first-time user meets: defaults that finish, caches keyed by the data, stops recorded."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from conftest import FAST, TINY_DDPM, compose_config
from omegaconf import open_dict
from PIL import Image
from pytorch_lightning import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

import genlab.tasks.train as train_task
from genlab.build import instantiate_datamodule
from genlab.errors import GenlabError, Interrupted
from genlab.io import safe_torch_load
from genlab.metrics.scores import check_fid_sizes
from genlab.scoring.reference import reference_classifier
from genlab.tasks.common import set_threads

GAN = ["model.generator.hidden=[16]", "model.discriminator.hidden=[16]", "eval.n_at_end=0", "logger=none"]


@pytest.mark.slow
def test_a_diffusion_run_is_scored_with_a_fast_sampler_and_says_which(tmp_path):
    cfg = compose_config("train", ["model=ddpm", *TINY_DDPM, *FAST, "eval.n_at_end=1000", "logger=none"], tmp_path)
    with open_dict(cfg):
        cfg.eval.reference_classifier.max_epochs = 1
    started = time.perf_counter()
    metrics = train_task.train(cfg)
    assert time.perf_counter() - started < 120
    # DPM-Solver++ at 20 NFE by default, fitted to the 10-step schedule of this tiny run (at most T − 1 = 9
    # steps: it never evaluates t = 0); DDPM would be T evaluations
    assert metrics["fid_sampler"] == "dpm_solver" and metrics["fid_steps"] == 9 and metrics["fid_nfe"] == 9
    assert metrics["fid_n"] == 1000 and metrics["fid"] > 0
    saved = json.loads((Path(cfg.paths.run_dir) / "metrics.json").read_text())
    assert saved["fid_sampler"] == "dpm_solver"


def write_class_folders(root: Path, shade: int) -> Path:
    for label in range(2):
        folder = root / f"class_{label}"
        folder.mkdir(parents=True)
        for i in range(12):
            Image.new("RGB", (8, 8), (shade + 60 * label + i, 0, 0)).save(folder / f"{i}.png")
    return root


@pytest.mark.slow
def test_two_folders_of_the_same_shape_get_two_reference_classifiers(tmp_path):
    tiny = ["eval.reference_classifier.widths=[4,8]", "eval.reference_classifier.max_epochs=1"]
    paths = []
    for name, shade in (("a", 0), ("b", 120)):
        root = write_class_folders(tmp_path / name, shade)
        overrides = ["data=image_folder", f"data.root={root}", "data.num_classes=2", "data.image_size=8", *tiny]
        cfg = compose_config("train", [*overrides, "data.num_workers=0"], tmp_path / f"run_{name}")
        classifier = reference_classifier(cfg.data, cfg.eval, tmp_path / "cache", torch.device("cpu"))
        paths.append(classifier.identity)
        assert classifier.info["fingerprint"] == instantiate_datamodule(cfg, train=False).fingerprint("train")
    assert paths[0] != paths[1]
    assert len(list((tmp_path / "cache" / "reference_classifiers").glob("*.pt"))) == 2


class SigtermAt(Callback):
    """Sends SIGTERM to this process after training step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_during_training_records_the_step_and_a_resumable_checkpoint(tmp_path, monkeypatch):
    cfg = compose_config("train", [*GAN, *FAST, "trainer.limit_train_batches=10"], tmp_path)
    builder = train_task.instantiate_callbacks
    monkeypatch.setattr(train_task, "instantiate_callbacks", lambda c: [*builder(c), SigtermAt(3)])
    with pytest.raises(Interrupted) as stop:
        train_task.train(cfg)
    assert stop.value.exit_code == 128 + signal.SIGTERM and "resume=" in str(stop.value)
    run = Path(cfg.paths.run_dir)
    record = json.loads((run / "metrics.json").read_text())
    assert record["status"] == "interrupted" and record["stopped_by"] == "SIGTERM" and record["global_step"] == 3
    assert safe_torch_load(run / "checkpoints" / "last.ckpt")["global_step"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))


class SignalInStep(LightningModule):
    """A model whose first training step sends the process ``signum`` (a fit nested in scoring, as the reference
    classifier's first training is)."""

    def __init__(self, signum: int) -> None:
        super().__init__()
        self.signum = signum
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        os.kill(os.getpid(), self.signum)
        time.sleep(30)  # the signal interrupts this at once
        raise AssertionError("the signal did not stop the nested fit")

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.parametrize("how", ["sigterm", "ctrl-c", "sigterm in a nested fit", "ctrl-c in a nested fit"])
def test_a_stop_during_the_end_of_training_scores_keeps_the_training_record(tmp_path, monkeypatch, how):
    def scores(cfg, model, datamodule):
        if how.endswith("nested fit"):
            signum = signal.SIGTERM if how.startswith("sigterm") else signal.SIGINT
            nested = Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=tmp_path / "nested")  # fmt: skip
            nested.fit(SignalInStep(signum), DataLoader(TensorDataset(torch.ones(4, 1)), batch_size=2))
        if how == "ctrl-c":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the signal interrupts this at once
        raise AssertionError("SIGTERM did not stop the scoring")

    monkeypatch.setattr(train_task, "end_of_training_scores", scores)
    cfg = compose_config("train", [*GAN, *FAST], tmp_path)
    started = time.perf_counter()
    with pytest.raises(Interrupted) as stop:
        train_task.train(cfg)
    assert time.perf_counter() - started < 25
    record = json.loads((Path(cfg.paths.run_dir) / "metrics.json").read_text())
    assert record["status"] == "interrupted" and "end-of-training" in record["interrupted_during"]
    assert "train/loss_d" in record and record["global_step"] == 2
    expected = ("SIGTERM", 143) if how.startswith("sigterm") else ("Ctrl-C (SIGINT)", 130)
    assert (record["stopped_by"], stop.value.exit_code) == expected


def test_threads_option_sets_torch_threads_and_refuses_nonsense(tmp_path):
    before = torch.get_num_threads()
    try:
        set_threads(compose_config("train", ["threads=1"], tmp_path))
        assert torch.get_num_threads() == 1
        with pytest.raises(GenlabError, match="threads=0 must be an integer"):
            set_threads(compose_config("train", ["threads=0"], tmp_path))
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_best_checkpoint_only_where_a_metric_ranks_epochs(tmp_path):
    gan = compose_config("train", [*GAN, *FAST], tmp_path / "gan")
    train_task.train(gan)
    assert sorted(p.name for p in (tmp_path / "gan" / "checkpoints").iterdir()) == ["last.ckpt"]
    cnn = compose_config("train", ["model=cnn", "model.net.widths=[8]", *FAST, "logger=none"], tmp_path / "cnn")
    metrics = train_task.train(cnn)
    assert sorted(p.name for p in (tmp_path / "cnn" / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert metrics["best_checkpoint"] == "checkpoints/best.ckpt"


def test_small_sets_get_derived_defaults_and_honest_advice(data_root, tmp_path):
    cfg = compose_config("train", ["data=mnist", "data.download=false", f"paths.data_dir={data_root}"], tmp_path)
    datamodule = instantiate_datamodule(cfg, train=False)  # val_size null: 1/12 of the 60 fixture images
    assert len(datamodule.dataset("val")) == 5 and len(datamodule.dataset("train")) == 55
    with pytest.raises(GenlabError, match=r"more generated samples cannot fix that.*split=train.*kid"):
        check_fid_sizes(50, 2000, 64)
    with pytest.raises(GenlabError, match="raise n"):
        check_fid_sizes(2000, 50, 64)


def test_an_unconditional_model_reads_class_folders_without_labels(tmp_path):
    root = write_class_folders(tmp_path / "folder", 0)
    overrides = ["model=dcgan", "data=image_folder", f"data.root={root}", "data.image_size=8", "data.num_workers=0"]
    cfg = compose_config("train", [*overrides, "model.generator.ngf=4", "model.discriminator.ndf=4", *FAST], tmp_path)
    with open_dict(cfg):
        cfg.logger = None
    metrics = train_task.train(cfg)
    assert metrics["status"] == "completed"
    assert bool((instantiate_datamodule(cfg, train=False).dataset("train").labels == -1).all())
