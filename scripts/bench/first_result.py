"""Time to first result: ``python -m genlab train model=X`` end to end (training and the end-of-training
score) with each model's default config on the digits, as a new user runs it, in a fresh process.

Where a default takes over 10 minutes, the recommended CPU overrides are timed too. GPU presets
(``ddpm_large``) are estimated from timed training and sampling steps (their rows say so).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from genlab.build import instantiate_model
from scripts.bench.common import compose_train, row

# model → (extra overrides of its default run, recommended CPU overrides when the default is too slow)
FIRST_RESULT: dict[str, tuple[list[str], list[str]]] = {
    "gan": ([], []),
    "dcgan": ([], []),
    "cgan": ([], []),
    "cnn": ([], []),
    "ddpm": ([], ["data.image_size=16"]),
    "cddpm": ([], ["data.image_size=16"]),
    "pix2pix": (["data=edges2digits"], ["data=edges2digits", "trainer.max_epochs=5"]),
}
TOO_SLOW_S = 600
HEADLINES = ("fid", "test/acc", "l1")


def time_train(overrides: list[str], cwd: Path) -> tuple[float, dict]:
    """Wall seconds of one ``genlab train`` in a fresh process, and its metrics.json."""
    env = {**os.environ, "GENLAB_CACHE_DIR": str(cwd / "cache")}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "genlab", "train", *overrides, "trainer.enable_progress_bar=false",
         "callbacks.progress_bar=null"],
        cwd=cwd, env=env, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"bench: genlab train {' '.join(overrides)} failed:\n{result.stderr[-2000:]}")
    runs = sorted((cwd / "outputs" / "train").iterdir(), key=lambda p: p.stat().st_mtime)
    return seconds, json.loads((runs[-1] / "metrics.json").read_text())


def headline(metrics: dict) -> str:
    return ", ".join(f"{k} {metrics[k]:.3g}" for k in HEADLINES if isinstance(metrics.get(k), float))


def bench_first_result(models: list[str], tmp: Path) -> list[dict]:
    """One row per model default (and per recommended CPU setting where the default is over 10 minutes)."""
    rows = []
    cwd = tmp / "first_result"
    cwd.mkdir(parents=True, exist_ok=True)
    # the reference classifier is trained once, on first need, as a new user's first run does
    for model in models:
        extra, recommended = FIRST_RESULT[model]
        seconds, metrics = time_train([f"model={model}", *extra], cwd)
        rows.append(row("first_result", f"train model={model} {' '.join(extra)}".strip(), seconds, unit="s",
                        result=headline(metrics), steps=metrics.get("global_step")))  # fmt: skip
        if seconds > TOO_SLOW_S and recommended:
            seconds, metrics = time_train([f"model={model}", *recommended], cwd)
            rows.append(row("first_result", f"train model={model} {' '.join(recommended)} (recommended on CPU)",
                            seconds, unit="s", result=headline(metrics)))  # fmt: skip
        print(f"first result: {rows[-1]['benchmark']}: {rows[-1]['genlab']:.0f} s", flush=True)
    return rows


def estimate_gpu_preset(tmp: Path, model: str = "ddpm_large", steps: int = 3) -> dict:
    """A CPU estimate of a GPU preset's default run: timed training steps × its step count, plus scoring."""
    cfg = compose_train([f"model={model}"], tmp / model)
    net = instantiate_model(cfg)
    batch = int(cfg.data.batch_size)
    optimizer = net.configure_optimizers()
    images = torch.rand(batch, cfg.data.channels, cfg.data.image_size, cfg.data.image_size) * 2 - 1
    started = time.perf_counter()
    for _ in range(steps):
        loss = net.diffusion_loss(net.net, images, None)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    per_step = (time.perf_counter() - started) / steps
    train_steps = int(cfg.trainer.max_epochs) * (1258 // batch)
    return row("first_result", f"train model={model} (estimated from {steps} timed steps)", per_step * train_steps,
               unit="s", result=f"{per_step:.2f} s/step × {train_steps} steps, scoring not included")  # fmt: skip
