"""A Hydra callback that tabulates a multirun's metrics when the sweep ends."""

from __future__ import annotations

import json
import logging
import statistics
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from genlab.callbacks.sweep_plot import plot_metric_vs_size
from genlab.io import atomic_write_bytes
from genlab.tables import csv_text, job_order, markdown_table, varying_overrides

log = logging.getLogger("genlab")

SUMMARY_PREFIXES = (
    "test/",
    "val/",
    "fid",
    "kid",
    "precision",
    "recall",
    "class_",
    "generator/",
    "memorisation_share",
    "memorisation_baseline",
    "train/aug_p",
    "train/r_t",
    "synthetic/",
)
# Metrics plotted against data.train_per_class when a sweep varies it: (metric, file name).
SIZE_PLOTS = (("test/acc", "accuracy_vs_size.png"), ("fid", "fid_vs_size.png"))


def summary_metric(key: str, value: Any) -> bool:
    """A final metric the summary tabulates (a number under SUMMARY_PREFIXES; not a ``*_step`` value)."""
    return key.startswith(SUMMARY_PREFIXES) and not key.endswith("_step") and isinstance(value, int | float)


def collect_runs(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job folder holding a ``metrics.json``: its overrides and headline metrics."""
    rows = []
    for metrics_file in sorted(sweep_dir.glob("*/metrics.json"), key=lambda p: job_order(p.parent.name)):
        job_dir = metrics_file.parent
        metrics = json.loads(metrics_file.read_text())
        overrides_file = job_dir / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
        row: dict[str, Any] = {"job": job_dir.name, "overrides": " ".join(overrides or [])}
        row.update({k: v for k, v in metrics.items() if summary_metric(k, v)})
        row["status"] = metrics.get("status", "")
        rows.append(row)
    return rows


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std of each metric over runs whose overrides differ only in ``seed``."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row, overrides in zip(rows, varying_overrides(rows), strict=True):
        key = " ".join(o for o in overrides if not o.startswith("seed="))
        groups.setdefault(key, []).append(row)
    out = []
    for key, members in groups.items():
        entry: dict[str, Any] = {"overrides": key or "(defaults)", "runs": len(members)}
        metric_keys = sorted({k for m in members for k in m if k.startswith(SUMMARY_PREFIXES)})
        for metric in metric_keys:
            values = [m[metric] for m in members if metric in m]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            entry[metric] = f"{statistics.fmean(values):.4f} ± {std:.4f}"
        out.append(entry)
    return out


def write_summary(sweep_dir: Path) -> str | None:
    """Write ``summary.md`` and ``summary.csv`` into ``sweep_dir``; return the markdown."""
    rows = collect_runs(sweep_dir)
    if not rows:
        return None
    text = f"# Sweep {sweep_dir.name}\n\n## Runs\n\n{markdown_table(rows)}\n"
    if any(" seed=" in f" {r['overrides']}" for r in rows):
        text += f"\n## Mean ± std over seeds\n\n{markdown_table(aggregate(rows))}\n"
    for metric, name in SIZE_PLOTS:
        plot = plot_metric_vs_size(rows, sweep_dir / name, metric)
        if plot is not None:
            text += f"\n![{metric} against training-set size]({plot.name})\n"
    atomic_write_bytes(sweep_dir / "summary.md", text.encode())
    atomic_write_bytes(sweep_dir / "summary.csv", csv_text(rows).encode())
    return text


class SweepSummary(Callback):
    """At the end of a multirun, print and save a table of every job's final metrics.

    At its start, pin ``hydra.sweep.dir`` for the jobs: it names the model and data of the launch,
    and jobs that sweep ``model=`` or ``data=`` would otherwise each resolve it to a folder of their own.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = str(config.hydra.sweep.dir)
        if '"' in sweep_dir:
            return
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.overrides.hydra.append(f'hydra.sweep.dir="{sweep_dir}"')

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        text = write_summary(sweep_dir) if sweep_dir.is_dir() else None
        if text:
            print(f"\n{text}\nwritten to {sweep_dir / 'summary.md'}")
