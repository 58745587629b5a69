"""``genlab eval run=DIR``: score a trained run (or every run of a sweep) under one protocol.

Generative runs get FID, KID, precision/recall and class metrics of ``n`` samples against the
reference split; translation runs (pix2pix) L1, PSNR, SSIM and FID of G(A) against B on the split's
pairs; classifier runs get accuracy and per-class accuracy. Results go to
``DIR/eval/<date_time>/metrics.json`` (+ ``grid.png`` of samples) and a table on stdout; nothing
else in ``DIR`` changes, also when evaluation fails.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.model_helpers import is_overridden
from torchvision.utils import save_image

from genlab.callbacks.compare import write_comparison
from genlab.errors import GenlabError
from genlab.io import write_json
from genlab.metrics.evaluate import GenerativeScorer, classifier_report, resolve_metrics
from genlab.metrics.translation import TranslationScorer, resolve_translation_metrics, translates
from genlab.models.base import GenerativeModule, to_unit_range
from genlab.tasks.common import (
    CONFIG_DIR,
    instantiate_datamodule,
    load_run_config,
    load_trained_model,
    pick_device,
    resolve_checkpoint,
    run_task,
)

log = logging.getLogger("genlab")

GENERATION_OPTIONS = ("truncation", "sampler", "steps", "eta", "guidance")


def eval_output_root(run: str | None, sweep: str | None, output_root: str) -> str:
    """Hydra's run folder for eval: inside the run when it is one, else the sweep, else outputs/eval."""
    if run and (Path(str(run)) / ".hydra" / "config.yaml").is_file():
        return f"{run}/eval"
    if sweep:
        return f"{sweep}/eval"
    return f"{output_root}/eval"


OmegaConf.register_new_resolver("genlab_eval_dir", eval_output_root, replace=True)


def _stamp() -> str:
    """The name of this evaluation's folders: Hydra's run/sweep folder name, else the current time."""
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        folder = hydra_cfg.run.dir if hydra_cfg.mode == RunMode.RUN else hydra_cfg.sweep.dir
        return Path(folder).name
    return datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def _generation_options(cfg: DictConfig, model: GenerativeModule) -> dict[str, Any]:
    options = {}
    for key in GENERATION_OPTIONS:
        value = cfg.get(key)
        if value is None:
            continue
        if key not in model.sample_options:
            accepted = ", ".join(sorted(set(GENERATION_OPTIONS) & model.sample_options)) or "none"
            raise GenlabError(f"{key}={value} is not an option of {type(model).__name__} (it accepts: {accepted}).")
        options[key] = value
    return options


def _default_n(cfg: DictConfig, datamodule: Any) -> int:
    if cfg.n is not None:
        return int(cfg.n)
    return min(len(datamodule.dataset(cfg.split)), int(cfg.eval.max_n))


def score_run(cfg: DictConfig, run_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Score one run folder; write ``metrics.json`` (and ``grid.png``) into ``out_dir``."""
    run_cfg = load_run_config(run_dir)
    checkpoint = resolve_checkpoint(run_dir, cfg.ckpt)
    device = pick_device(cfg.device)
    model = load_trained_model(run_cfg, checkpoint, device)
    datamodule = instantiate_datamodule(run_cfg, train=False)
    common = {"run": str(run_dir), "checkpoint": str(checkpoint), "model": str(run_cfg.model.name)}
    if translates(model):
        _generation_options(cfg, model)  # refuses sampler=, truncation=, ...: a translator has none
        scorer = TranslationScorer(
            run_cfg.data,
            cfg.eval,
            split=cfg.split,
            features=cfg.features or cfg.eval.features,
            metrics=resolve_translation_metrics(cfg.metrics),
            n=_default_n(cfg, datamodule),
            split_size=len(datamodule.dataset(cfg.split)),
            cache_dir=cfg.paths.cache_dir,
            device=device,
        )
        metrics = {**common, **scorer.score(model.translate, datamodule.dataloader(cfg.split)), "seed": int(cfg.seed)}
    elif isinstance(model, GenerativeModule):
        metrics_wanted = resolve_metrics(cfg.metrics, model, int(run_cfg.data.num_classes))
        options = _generation_options(cfg, model)
        scorer = GenerativeScorer(
            run_cfg.data,
            cfg.eval,
            split=cfg.split,
            features=cfg.features or cfg.eval.features,
            metrics=metrics_wanted,
            n=_default_n(cfg, datamodule),
            cache_dir=cfg.paths.cache_dir,
            device=device,
            datamodule=datamodule,
        )
        metrics, grid = scorer.score(model, seed=int(cfg.seed), options=options)
        metrics = {**common, **metrics, "generation_options": options}
        out_dir.mkdir(parents=True, exist_ok=True)
        save_image(to_unit_range(grid), out_dir / "grid.png", nrow=max(1, round(len(grid) ** 0.5)), padding=2)
    elif is_overridden("test_step", model) and int(run_cfg.data.num_classes) > 0:
        if cfg.metrics is not None:
            raise GenlabError(f"metrics= applies to generative models; model={run_cfg.model.name} is a classifier.")
        metrics = {**common, **classifier_report(model, datamodule, cfg.split, int(run_cfg.data.num_classes))}
        metrics["seed"] = int(cfg.seed)
    else:
        raise GenlabError(f"genlab eval does not know how to score model={run_cfg.model.name}.")
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


def _discard(out_dir: Path) -> None:
    """Remove a failed evaluation's folder (Hydra's config and log) so the run folder is as before."""
    if out_dir.is_dir() and not (out_dir / "metrics.json").exists():
        shutil.rmtree(out_dir, ignore_errors=True)
        if out_dir.parent.name == "eval" and out_dir.parent.is_dir() and not any(out_dir.parent.iterdir()):
            out_dir.parent.rmdir()


def evaluate_run(cfg: DictConfig, run_dir: Path, stamp: str) -> dict[str, Any]:
    """Score ``run_dir`` into ``run_dir/eval/<stamp>/``; print the table."""
    load_run_config(run_dir)
    out_dir = run_dir / "eval" / stamp
    try:
        metrics = score_run(cfg, run_dir, out_dir)
    except BaseException:
        _discard(out_dir)
        raise
    print(f"\ngenlab eval {run_dir}\n{format_table(metrics)}\nwritten to {out_dir / 'metrics.json'}", flush=True)
    return {"run": str(run_dir), "eval_dir": str(out_dir), "metrics": metrics}


def _job_order(run_dir: Path) -> tuple[int, str]:
    number = run_dir.name.split("_")[0]
    return (int(number) if number.isdigit() else 1 << 30, run_dir.name)


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
    return sorted(
        runs, key=lambda p: (int(p.name.split("_")[0]) if p.name.split("_")[0].isdigit() else 1 << 30, p.name)
    )


def evaluate(cfg: DictConfig) -> dict[str, Any] | list[dict[str, Any]]:
    """``run=DIR``: score one run. ``sweep=DIR``: score every run of a multirun and compare them."""
    stamp = _stamp()
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
    load_run_config(run)
    return evaluate_run(cfg, Path(str(run)).expanduser(), stamp)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> Any:
    """Hydra entry point of ``genlab eval``."""
    return run_task(evaluate, cfg)
