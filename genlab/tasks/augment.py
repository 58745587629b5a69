"""``genlab augment data=X augment=Y``: a grid of originals beside their augmented versions."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torchvision.utils import save_image

from genlab.errors import GenlabError
from genlab.imaging import to_model_range
from genlab.tasks.common import CONFIG_PATH, run_task

log = logging.getLogger("genlab")


def augment_preview(cfg: DictConfig) -> Path:
    """Write ``preview.png``: one row per original (first column), augmented versions beside it."""
    if cfg.n < 1:
        raise GenlabError(f"n={cfg.n} must be at least 1: it is the number of original images shown.")
    if cfg.versions < 1:
        raise GenlabError(f"versions={cfg.versions} must be at least 1.")
    torch.manual_seed(cfg.seed)
    augmentation = instantiate(cfg.augment)
    datamodule = instantiate(cfg.data, augmentation=None, _recursive_=False)
    dataset = datamodule.dataset(cfg.split)
    if cfg.n > len(dataset):
        raise GenlabError(f"n={cfg.n} is larger than the {len(dataset)} images of split={cfg.split}.")
    index = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(cfg.seed))[: cfg.n]
    originals = torch.stack([dataset.load_uint8(int(i)) for i in index]).float() / 255
    labels = torch.stack([dataset.labels[int(i)] for i in index])
    columns = [originals]
    for _ in range(cfg.versions):
        version = torch.stack([augmentation.preview(image) for image in originals])
        if augmentation.batch_transforms:
            mixed, _ = augmentation.apply_batch(to_model_range(version), labels)
            version = mixed.add(1).div(2).clamp(0, 1)
        columns.append(version)
    grid = torch.stack(columns, dim=1).flatten(0, 1)
    path = Path(cfg.paths.run_dir) / "preview.png"
    save_image(grid, path, nrow=cfg.versions + 1, padding=2, pad_value=1.0)
    log.info("preview of augment=%s on data=%s: %s", augmentation.name, datamodule.name, path)
    print(path)
    return path


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="augment")
def main(cfg: DictConfig) -> None:
    """Hydra entry point of ``genlab augment``."""
    run_task(augment_preview, cfg)


def rewrite_args(args: list[str]) -> list[str]:
    """``genlab augment`` takes its overrides as they are."""
    return args
