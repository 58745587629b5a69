"""``genlab tune experiment=<preset>``: an Optuna study whose trials are genlab train runs.

The preset's ``tune`` node holds the study: the ``objective`` (a key of each trial's metrics.json, e.g.
``fid``), its ``direction``, ``n_trials``, the ``sampler`` (an ``optuna.samplers`` object) and the search
space ``params`` in Hydra's sweep grammar (``interval``, ``tag(log|int, interval)``, ``choice``, ``range``, as
hydra-optuna-sweeper reads them; that plugin pins Optuna < 3, so genlab drives Optuna itself). Trials are
run folders ``<sweep>/<trial>_<params>/`` beside ``summary.md``/``summary.csv`` (trials ranked by the
objective, the best as a ready-to-run command) and ``optuna.db`` (the study, for optuna-dashboard).
"""

from __future__ import annotations

import logging
import math
import shlex
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from genlab.callbacks.trackers import require
from genlab.errors import GenlabError, TrainingDivergedError
from genlab.io import atomic_write_bytes
from genlab.resolvers import short_dirname
from genlab.tables import csv_text, markdown_table
from genlab.tasks.common import CONFIG_PATH, discard, discard_untrained, run_task
from genlab.tasks.train import train_into

log = logging.getLogger("genlab")


def distribution(optuna: Any, key: str, text: str) -> Any:
    """The Optuna distribution of one ``tune.params`` entry, e.g. ``tag(log, interval(1e-4, 1e-2))``."""
    try:
        sweep = OverridesParser.create().parse_override(f"{key}={text}").value()
    except HydraException as err:
        raise GenlabError(f"tune.params.{key}={text} cannot be read: {str(err).splitlines()[0]}") from None
    dists = optuna.distributions
    if isinstance(sweep, ChoiceSweep):
        return dists.CategoricalDistribution(list(sweep.list))
    if isinstance(sweep, IntervalSweep):
        log_scale = "log" in sweep.tags
        if "int" in sweep.tags:
            return dists.IntDistribution(int(sweep.start), int(sweep.end), log=log_scale)
        return dists.FloatDistribution(float(sweep.start), float(sweep.end), log=log_scale)
    if isinstance(sweep, RangeSweep) and all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step)):
        return dists.IntDistribution(sweep.start, sweep.stop - 1, step=sweep.step)
    raise GenlabError(
        f"tune.params.{key}={text} is not a search space: use interval(a, b), tag(log, interval(a, b)), "
        "tag(int, interval(a, b)), choice(x, y, ...) or range(a, b[, step]) with integers."
    )


def user_overrides() -> list[str]:
    """The command line's train overrides (``tune.*`` set the study, not the trials)."""
    given = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return [o for o in given if not o.lstrip("+~").startswith("tune.")]


def rank(rows: list[dict[str, Any]], objective: str, direction: str) -> list[dict[str, Any]]:
    """Completed trials best first (by ``objective``), then failed ones in trial order."""
    done = [r for r in rows if isinstance(r.get(objective), float) and math.isfinite(r[objective])]
    done.sort(key=lambda r: r[objective], reverse=direction == "maximize")
    ranked = [{"rank": i + 1, **row} for i, row in enumerate(done)]
    return ranked + [{"rank": "-", **row} for row in rows if row not in done]


def write_summary(sweep: Path, rows: list[dict[str, Any]], cfg: DictConfig, base: list[str]) -> str:
    """``summary.md`` and ``summary.csv``: the trials ranked; the best trial's train command."""
    study = cfg.tune
    ranked = rank(rows, str(study.objective), str(study.direction))
    table = [{k: v for k, v in row.items() if k != "overrides"} for row in ranked]  # full values: overrides.yaml
    sampler = str(study.sampler.get("_target_", "?")).rsplit(".", 1)[-1]
    text = (
        f"# Tuning {sweep.name}\n\n{study.direction} {study.objective} over {len(rows)} of {study.n_trials} "
        f"trials (sampler {sampler})\n\n## Trials ranked by {study.objective}\n\n{markdown_table(table)}\n"
    )
    if ranked and ranked[0]["rank"] == 1:
        best = ranked[0]
        command = shlex.join(["python", "-m", "genlab", "train", *base, *best["overrides"].split()])
        text += f"\n## Best: trial {best['trial']}, {study.objective}={best[study.objective]:.4f}\n\n    {command}\n"
    atomic_write_bytes(sweep / "summary.md", text.encode())
    atomic_write_bytes(sweep / "summary.csv", csv_text(ranked).encode())
    return text


def tune(cfg: DictConfig) -> str:
    """Run the study of ``cfg.tune`` into the sweep folder ``cfg.paths.run_dir``; return the summary."""
    study_cfg = cfg.get("tune")
    if not study_cfg or not study_cfg.get("params"):
        raise GenlabError(
            "genlab tune needs a search preset with tune.params, e.g. experiment=tune_dcgan "
            "(configs/experiment/tune_*.yaml)."
        )
    optuna = require("optuna", "tune", "genlab tune")
    if study_cfg.direction not in ("minimize", "maximize"):
        raise GenlabError(f"tune.direction={study_cfg.direction} must be minimize or maximize.")
    if isinstance(study_cfg.n_trials, bool) or not isinstance(study_cfg.n_trials, int) or study_cfg.n_trials < 1:
        raise GenlabError(f"tune.n_trials={study_cfg.n_trials} must be an integer ≥ 1.")
    space = {str(key): distribution(optuna, str(key), str(text)) for key, text in study_cfg.params.items()}
    sweep = Path(cfg.paths.run_dir)
    sweep.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=sweep.name,
        storage=f"sqlite:///{sweep.resolve() / 'optuna.db'}",
        sampler=instantiate(OmegaConf.to_container(study_cfg.sampler, resolve=True)),
        direction=str(study_cfg.direction),
    )
    base, objective, rows = user_overrides(), str(study_cfg.objective), []
    for number in range(int(study_cfg.n_trials)):
        trial = study.ask(space)
        chosen = [f"{key}={value!r}" for key, value in trial.params.items()]
        short = {
            key.rsplit(".", 1)[-1]: f"{value:.3g}" if isinstance(value, float) else value
            for key, value in trial.params.items()
        }
        folder = sweep / f"{number}_{short_dirname(','.join(f'{k}={v}' for k, v in short.items()))}"
        row: dict[str, Any] = {"trial": number, **short, "overrides": " ".join(chosen)}
        try:
            _, metrics = train_into([*base, *chosen], folder)
        except TrainingDivergedError:
            metrics = {"status": "diverged"}  # its metrics.json says where; the study goes on
        except BaseException:
            discard_untrained(folder)
            raise
        value = metrics.get(objective)
        if number == 0 and value is None and metrics.get("status") == "completed":
            raise GenlabError(
                f"trial 0 finished without '{objective}' in {folder / 'metrics.json'}: tune.objective must be a key "
                "of metrics.json (fid needs eval.n_at_end > 0)."
            )
        if isinstance(value, int | float) and math.isfinite(value):
            study.tell(trial, float(value))
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        rows.append({**row, objective: value, "status": metrics.get("status", "failed"), "run": folder.name})
        log.info("trial %d: %s -> %s=%s", number, " ".join(chosen), objective, value)
        text = write_summary(sweep, rows, cfg, base)
    print(f"\n{text}\nwritten to {sweep / 'summary.md'}")
    return text


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="tune")
def main(cfg: DictConfig) -> None:
    """Hydra entry point of ``genlab tune``."""
    sweep = Path(cfg.paths.run_dir)
    run_task(tune, cfg, cleanup=lambda: None if any(sweep.glob("*/metrics.json")) else discard(sweep))


def rewrite_args(args: list[str]) -> list[str]:
    """No rewriting: tune takes train's options plus its ``tune`` node."""
    return args
