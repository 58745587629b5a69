"""DiffAugment on a CPU: the cost per generator step of each policy, and a grid of augmented real images.

    PYTHONPATH=. python scripts/diffaug_cost.py time --threads 1     # CPU s per step, ratio to no augmentation
    PYTHONPATH=. python scripts/diffaug_cost.py grid docs/img/diffaug_policies_digits.png

``time`` trains the study's DCGAN (experiment=small_data_gan: digits 16×16, ngf = ndf = 32, batch 64) for
``--epochs`` epochs of 20 generator steps with each policy and reports the CPU seconds (process time) per
step of the epochs after the first. CPU seconds do not grow when other programs share the cores, wall
seconds do. ``grid`` draws the same real training images through each policy: one row per policy.
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

from genlab.augment.diffaug import DiffAugment
from genlab.build import CONFIG_DIR, instantiate_datamodule, instantiate_model, instantiate_trainer
from genlab.imaging import save_grid

POLICIES = {
    "off": [],
    "translation": ["model.diffaug=[translation]"],
    "cutout": ["model.diffaug=[cutout]"],
    "color": ["model.diffaug=[color]"],
    "translation,cutout": ["diffaug=translation_cutout"],
    "color,translation,cutout": ["diffaug=color_translation_cutout"],
    "adaptive": ["diffaug=adaptive"],
}


class StepTimer(Callback):
    """Wall and process CPU seconds of each training epoch, and its generator steps."""

    def __init__(self) -> None:
        self.epochs: list[tuple[float, float, int]] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = (time.perf_counter(), time.process_time(), trainer.global_step)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        wall, cpu, step = self.start
        self.epochs.append((time.perf_counter() - wall, time.process_time() - cpu, trainer.global_step - step))


def compose_study(overrides: list[str], run_dir: Path):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", ["experiment=small_data_gan", "trainer.accelerator=cpu", *overrides])
    with open_dict(cfg):
        cfg.paths.run_dir = str(run_dir)
        cfg.trainer.enable_progress_bar = False
        cfg.trainer.enable_checkpointing = False
        cfg.callbacks = {}
    return cfg


def time_policy(overrides: list[str], epochs: int) -> tuple[float, float]:
    """(wall, CPU) seconds per generator step over the epochs after the first."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_study([*overrides, f"trainer.max_epochs={epochs}", "data.train_per_class=10"], Path(tmp))
        timer = StepTimer()
        trainer = instantiate_trainer(cfg, [timer], [])
        trainer.fit(instantiate_model(cfg), datamodule=instantiate_datamodule(cfg))
    steps = sum(e[2] for e in timer.epochs[1:])
    return sum(e[0] for e in timer.epochs[1:]) / steps, sum(e[1] for e in timer.epochs[1:]) / steps


def policy_grid(path: Path, columns: int, seed: int, size: int) -> Path:
    """Row 1: real training images; then one row per fixed-p policy, each image augmented (p = 1)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_study([f"data.image_size={size}"], Path(tmp))
        datamodule = instantiate_datamodule(cfg, train=False)
        images, _ = next(iter(datamodule.dataloader("train")))
    real = images[:columns]
    rows = [real]
    for name in ("translation", "cutout", "color", "translation,cutout", "color,translation,cutout"):
        rows.append(DiffAugment(name)(real, generator=torch.Generator().manual_seed(seed)))
    return save_grid(torch.cat(rows), path, nrow=columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    timing = sub.add_parser("time", help="CPU seconds per generator step of each policy")
    timing.add_argument("--epochs", type=int, default=4)
    timing.add_argument("--threads", type=int, default=1)
    timing.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    grid = sub.add_parser("grid", help="real images through each policy, one row per policy")
    grid.add_argument("path", type=Path)
    grid.add_argument("--columns", type=int, default=12)
    grid.add_argument("--seed", type=int, default=0)
    grid.add_argument("--size", type=int, default=32, help="image side (the study trains at 16)")
    args = parser.parse_args()
    if args.command == "grid":
        print(policy_grid(args.path, args.columns, args.seed, args.size))
        return
    torch.set_num_threads(args.threads)
    print(f"| policy | wall ms/step | CPU ms/step | CPU ratio to off | threads={args.threads} |\n|---|---|---|---|---|")
    base = None
    for name in args.policies:
        wall, cpu = time_policy(POLICIES[name], args.epochs)
        base = cpu if name == "off" else base
        ratio = f"{cpu / base:.2f}" if base else "-"
        print(f"| {name} | {1000 * wall:.1f} | {1000 * cpu:.1f} | {ratio} | |", flush=True)


if __name__ == "__main__":
    main()
