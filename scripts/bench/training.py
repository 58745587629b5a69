"""Training overhead: genlab's LightningModule + Trainer (with the callbacks and logger a user gets)
against the plain loop on identical nets, alternating K steps each inside one ``trainer.fit``."""

from __future__ import annotations

import copy
import statistics
import time
from contextlib import suppress
from pathlib import Path

import torch
from omegaconf import OmegaConf, open_dict
from pytorch_lightning import Callback

from genlab.build import (
    instantiate_callbacks,
    instantiate_datamodule,
    instantiate_loggers,
    instantiate_model,
    instantiate_trainer,
)
from genlab.scoring.training import fid_callbacks
from scripts.bench.common import Settings, compose_train, peak_rss_mb, reset_peak_rss, row, sync
from scripts.bench.plain_loops import PlainLoop

TRAIN_MODELS: dict[str, list[str]] = {
    "cnn": ["model=cnn"],
    "gan": ["model=gan"],
    "dcgan": ["model=dcgan"],
    "cgan": ["model=cgan"],
    "pix2pix": ["model=pix2pix", "data=edges2digits", "data.image_size=64"],
    "ddpm": ["model=ddpm"],
}


class WindowsDone(Exception):
    """Raised by :class:`Alternate` to leave ``trainer.fit`` at once (no end-of-epoch work after the last window)."""


class Alternate(Callback):
    """Inside genlab's fit: after warm-up, time ``window`` genlab steps, then run ``window`` plain
    steps, and so on, until both have ``windows`` timed windows; then leave the fit.

    A genlab window is measured from one ``on_train_batch_end`` to the ``window``-th next one, so it
    holds whole iterations of Lightning's loop (data fetch, hooks, logging, progress bar); a window
    is dropped when an epoch ends inside it (validation, grids and checkpoints are per-epoch work).
    """

    def __init__(self, plain: PlainLoop, settings: Settings, device: torch.device) -> None:
        self.plain, self.s, self.device = plain, settings, device
        self.steps = 0
        self.start: float | None = None
        self.count = 0
        self.genlab: list[float] = []
        self.baseline: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        sync(self.device)
        now = time.perf_counter()
        self.steps += 1
        if self.steps < self.s.warmup:
            return
        if self.steps == self.s.warmup:
            self.plain.run(self.s.warmup)
        if self.start is None:
            self.start, self.count = time.perf_counter(), 0
            return
        self.count += 1
        if self.count < self.s.window:
            return
        self.genlab.append(now - self.start)
        self.baseline.append(self.plain.run(self.s.window))
        if len(self.genlab) >= self.s.windows:
            raise WindowsDone
        self.start, self.count = time.perf_counter(), 0


def switch_overrides(switches: dict, device: torch.device) -> list[str]:
    """The Hydra overrides of the bench's GPU switches."""
    return [
        f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}",
        f"trainer.precision={switches['precision']}",
        f"speed.channels_last={str(switches['channels_last']).lower()}",
        f"speed.compile={str(switches['compile']).lower()}",
        f"speed.compile_backend={switches['compile_backend']}",
        f"data.on_device={str(switches['on_device']).lower()}",
        f"augment.on_device={str(switches['on_device']).lower()}",
    ]


def bench_training(
    name: str, settings: Settings, device: torch.device, switches: dict, tmp: Path, extra: list[str]
) -> dict:
    """One model: genlab (real Trainer, configured callbacks and logger) vs the plain loop."""
    overrides = [*TRAIN_MODELS[name], *switch_overrides(switches, device), "trainer.max_epochs=100000", *extra]
    if name == "gan" and switches["channels_last"]:
        overrides.append("speed.channels_last=false")  # MLPs: the switch refuses nets without convolutions
    cfg = compose_train(overrides, tmp / f"train_{name}")
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(cfg.seed)
    datamodule = instantiate_datamodule(cfg)
    model = instantiate_model(cfg)
    plain_cfg = copy.deepcopy(cfg)
    with open_dict(plain_cfg):
        plain_cfg.speed.channels_last = plain_cfg.speed.compile = False
    torch.manual_seed(cfg.seed)
    plain_model = instantiate_model(plain_cfg)  # the same weights (same seed), switches applied by PlainLoop
    datamodule.setup("fit")
    plain_switches = dict(switches, channels_last=switches["channels_last"] and name != "gan")
    plain = PlainLoop(name, plain_model, datamodule.dataset("train"), datamodule.batch_size, device, plain_switches)
    timer = Alternate(plain, settings, device)
    callbacks = [*instantiate_callbacks(cfg), *fid_callbacks(cfg, model, datamodule), timer]
    trainer = instantiate_trainer(cfg, callbacks, instantiate_loggers(cfg))
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    with suppress(WindowsDone):
        trainer.fit(model, datamodule=datamodule)
    batch = datamodule.batch_size
    genlab = statistics.median(settings.window * batch / t for t in timer.genlab)
    baseline = statistics.median(settings.window * batch / t for t in timer.baseline)
    return row(
        "train",
        f"{name} {cfg.data.name} {cfg.data.image_size}px bs{batch}",
        genlab,
        baseline,
        goal="≥ 0.97",
        unit="img/s",
        peak_rss_mb=peak_rss_mb(),
        cuda_max_mb=torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        genlab_windows_s=timer.genlab,
        plain_windows_s=timer.baseline,
        images_per_window=settings.window * batch,
    )
