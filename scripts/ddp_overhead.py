"""DDP start-up and per-step overhead vs one process: times `genlab train` runs on this machine.

    python scripts/ddp_overhead.py [--model cnn] [--steps 5 45]

Each setting trains one epoch of N batches (no validation, test or FID) for two values of N; the
wall-time difference gives the cost per step, the intercept the fixed cost (imports, data, process
start, DDP rendezvous). Settings: one process with 1 and 2 threads, ``trainer=ddp_cpu`` (2 processes
× 1 thread, gloo). Under DDP every step processes one batch (64 digits) per rank, i.e. twice the images.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SETTINGS = {
    "1 process, 1 thread": (["trainer=cpu"], "1"),
    "1 process, 2 threads": (["trainer=cpu"], "2"),
    "ddp_cpu, 2 processes x 1 thread": (["trainer=ddp_cpu"], "1"),
}


def timed_run(overrides: list[str], threads: str, steps: int, model: str) -> float:
    """Wall seconds of one `genlab train` command."""
    args = [
        "train",
        f"model={model}",
        *overrides,
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={steps}",
        "trainer.limit_val_batches=0",
        "test=false",
        "eval.n_at_end=0",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "callbacks.progress_bar=null",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": threads, "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as cwd:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "genlab", *args], cwd=cwd, env=env, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--steps", type=int, nargs=2, default=[5, 45])
    parser.add_argument("--repeats", type=int, default=1)
    options = parser.parse_args()
    low, high = options.steps
    print(f"model={options.model}, {low} vs {high} steps, best of {options.repeats}")
    print("| setting | fixed cost (s) | s / step | images / s |")
    print("|---|---|---|---|")
    for name, (overrides, threads) in SETTINGS.items():
        t_low = min(timed_run(overrides, threads, low, options.model) for _ in range(options.repeats))
        t_high = min(timed_run(overrides, threads, high, options.model) for _ in range(options.repeats))
        per_step = (t_high - t_low) / (high - low)
        fixed = t_low - low * per_step
        ranks = 2 if "ddp" in name else 1
        print(f"| {name} | {fixed:.1f} | {per_step:.3f} | {ranks * 64 / per_step:.0f} |", flush=True)


if __name__ == "__main__":
    main()
