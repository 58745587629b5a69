"""``genlab eval run=DIR``: score a trained run (or every run of a sweep) under one protocol.

Generative runs get FID, KID, precision/recall and class metrics of ``n`` samples against the
reference split; translation runs (pix2pix) L1, PSNR, SSIM and FID of G(A) against B on the split's
pairs; classifier runs get accuracy and per-class accuracy (all through :meth:`genlab.api.Run.evaluate`).
Results go to ``DIR/eval/<date_time>/metrics.json`` (+ ``grid.png`` of samples, ``nearest.png`` of the
memorisation check: each sample | its 3 nearest training images in features | in pixels) and a table on stdout;
nothing else in ``DIR`` changes, also when evaluation fails.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from genlab.api import Run
from genlab.callbacks.compare import write_comparison
from genlab.errors import GenlabError
from genlab.imaging import save_grid
from genlab.io import write_json
from genlab.metrics.memorization import NEIGHBOURS
from genlab.runs import check_run_dir
from genlab.tables import job_order
from genlab.tasks.common import CONFIG_PATH, discard, extra_options, plus_unknown_keys, run_task
from genlab.tasks.sampler_study import sampler_study

log = logging.getLogger("genlab")


def _stamp() -> str:
    """The name of this evaluation's folders: Hydra's run/sweep folder name, else the current time."""
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        folder = hydra_cfg.run.dir if hydra_cfg.mode == RunMode.RUN else hydra_cfg.sweep.dir
        return Path(folder).name
    return datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def score_run(cfg: DictConfig, run_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Score one run folder; write ``metrics.json`` (and ``grid.png``) into ``out_dir``."""
    run = Run.load(run_dir, cfg.ckpt, cfg.device)
    evaluation = run.evaluate(
        n=cfg.n,
        features=cfg.features,
        split=cfg.split,
        metrics=cfg.metrics,
        seed=int(cfg.seed),
        settings=cfg.eval,
        cache_dir=cfg.paths.cache_dir,
        **extra_options(cfg, "eval", run.generation_options()),
    )
    metrics = {"run": str(run_dir), "checkpoint": str(run.checkpoint), "model": run.name, **evaluation.metrics}
    if evaluation.grid is not None:
        save_grid(evaluation.grid, out_dir / "grid.png")
    if evaluation.nearest is not None:
        save_grid(evaluation.nearest, out_dir / "nearest.png", nrow=1 + 2 * NEIGHBOURS)
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        return "[" + ", ".join("-" if v is None else f"{v:.3f}" for v in value) + "]"
    return str(value)


def format_table(metrics: dict[str, Any]) -> str:
    """A two-column text table of the metrics."""
    width = max(map(len, metrics))
    return "\n".join(f"  {key:<{width}}  {_fmt(value)}" for key, value in metrics.items())


def evaluate_run(cfg: DictConfig, run_dir: Path, stamp: str) -> dict[str, Any]:
    """Score ``run_dir`` into ``run_dir/eval/<stamp>/``; print the table. A failure leaves no folder behind."""
    check_run_dir(run_dir)
    out_dir = run_dir / "eval" / stamp
    try:
        metrics = score_run(cfg, run_dir, out_dir)
    except BaseException:
        discard(out_dir)
        raise
    print(f"\ngenlab eval {run_dir}\n{format_table(metrics)}\nwritten to {out_dir / 'metrics.json'}", flush=True)
    return {"run": str(run_dir), "eval_dir": str(out_dir), "metrics": metrics}


def sweep_runs(sweep_dir: Path) -> list[Path]:
    """The run folders of a multirun folder, in job order."""
    if not sweep_dir.is_dir():
        raise GenlabError(f"sweep={sweep_dir} does not exist: pass a folder written by `genlab train -m ...`.")
    runs = [p for p in sweep_dir.iterdir() if (p / ".hydra" / "config.yaml").is_file()]
    if not runs:
        raise GenlabError(
            f"sweep={sweep_dir} holds no run folders (<job>/.hydra/config.yaml): pass a folder written by "
            "`genlab train -m ...`, or use run=DIR for a single run."
        )
    return sorted(runs, key=lambda p: job_order(p.name))


def evaluate(cfg: DictConfig) -> dict[str, Any] | list[dict[str, Any]]:
    """``run=DIR``: score one run. ``sweep=DIR``: score every run of a multirun and compare them.
    ``experiment=sampler_study``: score one diffusion run with every sampler at several NFE."""
    stamp = _stamp()
    if cfg.get("sampler_study") is not None:
        return sampler_study(cfg, stamp, score_run)
    if cfg.sweep:
        sweep_dir = Path(str(cfg.sweep)).expanduser()
        results = []
        for run_dir in sweep_runs(sweep_dir):
            try:
                results.append(evaluate_run(cfg, run_dir, stamp))
            except GenlabError as err:
                log.warning("%s: not scored: %s", run_dir.name, err)
                results.append({"run": str(run_dir), "eval_dir": "", "metrics": {"status": f"error: {err}"}})
        if all(not r["eval_dir"] for r in results):
            raise GenlabError(f"no run of sweep={sweep_dir} could be scored (see the warnings above).")
        print(f"\nwritten to {write_comparison(sweep_dir, results)}")
        return results
    run = None if OmegaConf.is_missing(cfg, "run") else cfg.run
    return evaluate_run(cfg, check_run_dir(run), stamp)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="eval")
def main(cfg: DictConfig) -> Any:
    """Hydra entry point of ``genlab eval``."""
    return run_task(evaluate, cfg)


def rewrite_args(args: list[str]) -> list[str]:
    """The model's sampling options (``sampler=ddpm``) are not in eval.yaml: add them."""
    return plus_unknown_keys(args, "eval")
