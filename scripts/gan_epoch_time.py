"""Time per training epoch of the GAN models on a dataset (default: digits), wall and CPU seconds.

    PYTHONPATH=. python scripts/gan_epoch_time.py                    # gan, dcgan, cgan (both heads), wgan_gp
    python scripts/gan_epoch_time.py --epochs 3 --models gan dcgan --threads 2

CPU seconds (process time) do not grow when other programs share the cores, wall seconds do:
on a busy machine, CPU seconds / threads is the better estimate of the uncontended wall time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict
from pytorch_lightning import Callback

from genlab.build import CONFIG_DIR, instantiate_datamodule, instantiate_model, instantiate_trainer

MODELS = {
    "gan": ["model=gan"],
    "dcgan": ["model=dcgan"],
    "cgan": ["model=cgan"],
    "cgan_multiclass": ["model=cgan", "model/head=multiclass"],
    "wgan_gp": ["model=gan", "model/loss=wgan_gp"],
}


class EpochTimer(Callback):
    """Wall and process CPU seconds of each training epoch."""

    def __init__(self) -> None:
        self.times: list[tuple[float, float]] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = (time.perf_counter(), time.process_time())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.times.append((time.perf_counter() - self.start[0], time.process_time() - self.start[1]))


def time_model(overrides: list[str], epochs: int, extra: list[str]) -> list[tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp, initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", [*overrides, f"trainer.max_epochs={epochs}", "trainer.accelerator=cpu", *extra])
        with open_dict(cfg):
            cfg.paths.run_dir = str(Path(tmp) / "run")
            cfg.trainer.enable_progress_bar = False
            cfg.trainer.enable_checkpointing = False
        timer = EpochTimer()
        trainer = instantiate_trainer(cfg, [timer], [])
        trainer.fit(instantiate_model(cfg), datamodule=instantiate_datamodule(cfg))
        return timer.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. data=mnist")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"| model | wall s/epoch | CPU s/epoch | threads={args.threads} |\n|---|---|---|---|")
    for name in args.models:
        times = time_model(MODELS[name], args.epochs, args.overrides)[1:] or [(float("nan"),) * 2]
        wall = sum(t[0] for t in times) / len(times)
        cpu = sum(t[1] for t in times) / len(times)
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | |", flush=True)


if __name__ == "__main__":
    main()
