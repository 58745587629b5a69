"""Time to first result: ``python -m genlab train model=X`` end to end (training and the end-of-training
score) with each model's default config on the digits, as a new user runs it, in a fresh process.

A default that has recommended CPU overrides first runs for ``PROBE_S`` seconds and is stopped with
SIGTERM (genlab records the step it reached); the others run to the end at once. A probed default whose
projected time is within ``TOO_SLOW_S`` is then resumed to the end, and its row is the measured wall time
of both parts; a slower default's row is the projection (steps reached in the probe, scaled to its step
count; the end-of-training score not included), and its recommended CPU overrides are measured end to end
instead. ``jobs=2`` runs two commands side by side with one torch thread each (the rows say so). GPU
presets (``ddpm_large``) are estimated from timed training steps.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from genlab.build import instantiate_datamodule, instantiate_model, load_run_config
from scripts.bench.common import compose_train, row

# model → (overrides its default needs on the digits, recommended CPU overrides when the default is too slow).
# A model with recommended overrides is probed first; the others run to the end at once.
FIRST_RESULT: dict[str, tuple[list[str], list[str]]] = {
    "gan": ([], []),
    "dcgan": ([], []),
    "cgan": ([], []),
    "wgan_gp": (["model=dcgan", "model/loss=wgan_gp"], []),
    "cnn": ([], []),
    "ddpm": ([], ["data.image_size=16"]),
    "cddpm": ([], ["data.image_size=16"]),
    "pix2pix": (["data=edges2digits"], ["data=edges2digits", "trainer.max_epochs=5"]),
    "cyclegan": (["data=unpaired_edges2digits"], ["data=unpaired_edges2digits", "trainer.max_epochs=3"]),
    "dae": ([], []),
    "vae": ([], []),
    "cvae": ([], []),
    "dagan": (
        ["data.heldout_classes=[5,6,7,8,9]", "data.classes=seen", "data.num_classes=5"],
        ["data.heldout_classes=[5,6,7,8,9]", "data.classes=seen", "data.num_classes=5", "data.image_size=16"],
    ),
}
PROBE_S = 90
CALLS = itertools.count()
TOO_SLOW_S = 600
HEADLINES = ("fid", "test/acc", "l1", "class_acc", "psnr")
QUIET = ["trainer.enable_progress_bar=false", "callbacks.progress_bar=null"]


def model_overrides(model: str, extra: list[str]) -> list[str]:
    """The command line of a table row (``wgan_gp`` is a loss option of ``dcgan``)."""
    return extra if any(o.startswith("model=") for o in extra) else [f"model={model}", *extra]


def genlab_train(args: list[str], cwd: Path, threads: int | None, limit: float | None) -> tuple[float, Path, bool]:
    """Run ``genlab train ARGS`` in a fresh process; SIGTERM it after ``limit`` seconds. Returns (wall seconds,
    the run folder, whether it finished)."""
    env = {**os.environ, "GENLAB_CACHE_DIR": str(cwd / "cache")}
    extra = [f"threads={threads}"] if threads else []
    resumed = args[-1].removeprefix("resume=") if args and args[-1].startswith("resume=") else None
    root = cwd / "outputs" / str(next(CALLS))  # its own output root: side-by-side calls tell their runs apart
    if resumed is None:
        extra.append(f"paths.output_root={root}")
    command = [sys.executable, "-m", "genlab", "train", *args, *extra, *QUIET]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = process.communicate(timeout=limit)
        finished = True
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate()
        finished = False
    seconds = time.perf_counter() - started
    if finished and process.returncode != 0:
        raise SystemExit(f"bench: genlab train {' '.join(args)} failed:\n{stderr[-2000:]}")
    run = Path(resumed) if resumed is not None else next((root / "train").iterdir())
    return seconds, run, finished


def planned_steps(run: Path) -> int:
    """Training steps of a run's config (``max_steps``, else epochs × batches per epoch ÷ critic updates)."""
    cfg = load_run_config(run)
    if int(cfg.trainer.get("max_steps") or -1) > 0:
        return int(cfg.trainer.max_steps)
    datamodule = instantiate_datamodule(cfg)
    datamodule.setup("fit")
    batches = len(datamodule.train_dataloader())
    return int(cfg.trainer.max_epochs) * batches // int(cfg.model.get("n_critic") or 1)


def headline(metrics: dict) -> str:
    return ", ".join(f"{k} {metrics[k]:.3g}" for k in HEADLINES if isinstance(metrics.get(k), float))


def time_model(model: str, cwd: Path, threads: int | None) -> list[dict]:
    """The row(s) of one model: measured end to end, or projected plus its recommended overrides measured."""
    extra, recommended = FIRST_RESULT[model]
    args = model_overrides(model, extra)
    how = f", {threads} torch thread" if threads else ""
    seconds, run, finished = genlab_train(args, cwd, threads, PROBE_S if recommended else None)
    if not finished:
        done = int(json.loads((run / "metrics.json").read_text()).get("global_step") or 0)
        total = planned_steps(run)
        projected = seconds * total / max(done, 1)
        if projected > TOO_SLOW_S and recommended:
            note = f"projected{how}: {done} of {total} steps in {seconds:.0f} s, scoring not included"
            rows = [row("first_result", f"train {' '.join(args)}", projected, unit="s", result=note)]
            faster = model_overrides(model, recommended)
            seconds, run, _ = genlab_train(faster, cwd, threads, None)
            metrics = json.loads((run / "metrics.json").read_text())
            label = f"train {' '.join(faster)} (recommended on CPU)"
            rows.append(row("first_result", label, seconds, unit="s", result=headline(metrics) + how,
                            steps=metrics.get("global_step")))  # fmt: skip
            return rows
        more, run, _ = genlab_train([f"resume={run}"], cwd, threads, None)  # a resume takes its run's own config
        seconds += more
        how += ", stopped once and resumed"
    metrics = json.loads((run / "metrics.json").read_text())
    return [row("first_result", f"train {' '.join(args)}", seconds, unit="s", result=headline(metrics) + how,
                steps=metrics.get("global_step"))]  # fmt: skip


def bench_first_result(models: list[str], tmp: Path, jobs: int = 1) -> list[dict]:
    """One row per model default (and per recommended CPU setting where the default is over 10 minutes).
    The first model runs alone: it trains the cached reference classifier, as a new user's first run does."""
    cwd = tmp / "first_result"
    cwd.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    results = {models[0]: time_model(models[0], cwd, None)}  # alone, with torch's own thread count
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {model: pool.submit(time_model, model, cwd, threads) for model in models[1:]}
        for model, future in futures.items():
            results[model] = future.result()
            print(f"first result: {model}: {results[model][-1]['genlab']:.0f} s", flush=True)
    return [r for model in models for r in results[model]]


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
    train_steps = int(cfg.trainer.max_epochs) * math.floor(1258 / batch)
    return row("first_result", f"train model={model} (estimated from {steps} timed steps)", per_step * train_steps,
               unit="s", result=f"{per_step:.2f} s/step × {train_steps} steps, scoring not included")  # fmt: skip
