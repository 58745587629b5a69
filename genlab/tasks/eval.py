"""``genlab eval run=DIR``: score a trained run."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from genlab.errors import GenlabError
from genlab.tasks.common import CONFIG_DIR, load_run_config, run_task


def evaluate(cfg: DictConfig) -> None:
    """Validate the run folder; scoring arrives with the evaluation issue."""
    run_cfg = load_run_config(cfg.run)
    raise GenlabError(f"genlab eval is not available for model '{run_cfg.model.name}' yet.")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    """Hydra entry point of ``genlab eval``."""
    run_task(evaluate, cfg)
