"""``genlab sample run=DIR``: generate images from a trained run, using the run's own config."""

from __future__ import annotations

from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from genlab.errors import GenlabError
from genlab.models.base import GenerativeModule
from genlab.tasks.common import (
    CONFIG_DIR,
    load_run_config,
    load_trained_model,
    pick_device,
    resolve_checkpoint,
    run_task,
)


def sample(cfg: DictConfig) -> list[Path]:
    """Rebuild the run's model, load its checkpoint and write samples under ``run/sample/<date_time>/``."""
    run_cfg = load_run_config(cfg.run)
    checkpoint = resolve_checkpoint(cfg.run, cfg.ckpt)
    torch.manual_seed(cfg.seed)
    model = load_trained_model(run_cfg, checkpoint, pick_device(cfg.device))
    if not isinstance(model, GenerativeModule):
        raise GenlabError(
            f"genlab sample is not available for model '{run_cfg.model.name}': it does not generate "
            "images. Use `genlab eval run=...` to score a classifier."
        )
    written = model.sample_to(cfg, Path(cfg.paths.run_dir))
    for path in written:
        print(path)
    return written


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="sample")
def main(cfg: DictConfig) -> None:
    """Hydra entry point of ``genlab sample``."""
    run_task(sample, cfg)
