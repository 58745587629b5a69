"""``genlab eval experiment=sampler_study run=DIR``: FID against network evaluations for every sampler.

One trained diffusion run is scored with each sampler of ``sampler_study.samplers`` at each NFE budget of
``sampler_study.nfe`` (its ``steps`` option; a sampler without one, DDPM, once with all T steps), all with the
same ``n``, seed, split and features. Each point is an ordinary ``genlab eval`` (the eval command's scoring
function, given as ``score``, with ``sampler=NAME steps=K``) written to ``DIR/eval/<date_time>/<sampler>_<K>/``
(metrics.json with the sampler, its options and NFE, and grid.png); the study folder ``DIR/eval/<date_time>/`` gets
``sampler_study.md`` / ``.csv`` (FID, KID, precision/recall, images/s of generation per point) and
``sampler_study.png`` (FID against NFE). Every point is checked before the first one is scored.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from genlab.api import Run
from genlab.capabilities import Denoises
from genlab.diffusion.samplers import sampler_class
from genlab.errors import GenlabError
from genlab.io import atomic_write_bytes
from genlab.runs import check_run_dir
from genlab.tables import csv_text, markdown_table
from genlab.tasks.common import discard, extra_options

log = logging.getLogger("genlab")

ScoreRun = Callable[[DictConfig, Path, Path], dict[str, Any]]

NAME = "sampler_study"
# The reference of the "fastest sampler within 10 % of DDIM-50's FID" line (issue 17's criterion).
REFERENCE = ("ddim", 50)
TOLERANCE = 0.10


@dataclass(frozen=True)
class StudyPoint:
    """One sampler at one ``steps`` budget (None: a sampler without ``steps``, which uses all T steps)."""

    sampler: str
    steps: int | None

    @property
    def folder(self) -> str:
        return self.sampler if self.steps is None else f"{self.sampler}_{self.steps}"

    def options(self) -> dict[str, Any]:
        return {"sampler": self.sampler} if self.steps is None else {"sampler": self.sampler, "steps": self.steps}


def _names(value: Any, key: str) -> list[Any]:
    if not OmegaConf.is_list(value) or len(value) == 0:
        raise GenlabError(f"sampler_study.{key}={value} must be a non-empty list.")
    return list(value)


def study_points(settings: DictConfig, model: Denoises) -> list[StudyPoint]:
    """The points of ``settings`` (``samplers``, ``nfe``), each resolved on ``model`` so a bad one is refused now."""
    budgets = _names(settings.get("nfe"), "nfe")
    for value in budgets:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GenlabError(f"sampler_study.nfe contains {value}: every NFE budget must be an integer ≥ 1.")
    points = []
    for name in _names(settings.get("samplers"), "samplers"):
        takes_steps = "steps" in sampler_class(str(name)).option_names()
        for steps in budgets if takes_steps else [None]:
            point = StudyPoint(str(name), steps)
            try:
                model.resolve_sampler(**point.options())
            except GenlabError as err:
                given = " ".join(f"{key}={value}" for key, value in point.options().items())
                raise GenlabError(f"sampler_study: {given} cannot sample this run: {err}") from None
            points.append(point)
    return points


def study_row(point: StudyPoint, metrics: dict[str, Any], folder: str) -> dict[str, Any]:
    """The table row of a scored point: NFE, scores, and images per second of generation (wall and CPU)."""
    row: dict[str, Any] = {"sampler": point.sampler, "steps": "all T" if point.steps is None else point.steps}
    row["nfe"] = metrics.get("nfe")
    row.update({k: metrics[k] for k in ("fid", "kid_mean", "precision", "recall") if k in metrics})
    n = metrics.get("n", 0)
    for key, column in (("generation_seconds", "images_per_s"), ("generation_cpu_seconds", "images_per_cpu_s")):
        seconds = metrics.get(key) or 0.0
        row[column] = round(n / seconds, 2) if seconds > 0 else None
    row["eval"] = folder
    return row


def fastest_within(rows: list[dict[str, Any]]) -> str:
    """A line naming the point with the fewest NFE whose FID is within 10 % of DDIM-50's (when both are known)."""
    reference = next((r for r in rows if (r["sampler"], r["steps"]) == REFERENCE and "fid" in r), None)
    if reference is None:
        return ""
    limit = reference["fid"] * (1 + TOLERANCE)
    passing = sorted((r for r in rows if "fid" in r and r["fid"] <= limit), key=lambda r: (r["nfe"], r["fid"]))
    best = passing[0]
    return (
        f"Fewest NFE within {TOLERANCE:.0%} of DDIM-50's FID ({reference['fid']:.4f}, limit {limit:.4f}): "
        f"{best['sampler']} steps={best['steps']} ({best['nfe']} NFE, FID {best['fid']:.4f})."
    )


def plot_fid_vs_nfe(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """FID against NFE (log axis), one line per sampler; a sampler with a single point is drawn as a marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for sampler in dict.fromkeys(r["sampler"] for r in rows):
        points = sorted((r["nfe"], r["fid"]) for r in rows if r["sampler"] == sampler and "fid" in r)
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=sampler)
    axes.set_xscale("log")
    axes.set_xlabel("network evaluations per image (NFE)")
    axes.set_ylabel("FID (lower is better)")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def machine_note(load_before: tuple[float, ...]) -> str:
    """Where the images/s were measured: device, torch threads, CPU count and the load average."""
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({platform.machine()})"
    load_after = os.getloadavg()
    return (
        f"images/s: generation time only, wall clock (images_per_s) and this process's CPU time "
        f"(images_per_cpu_s), on {device}, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPU cores, "
        f"load average {load_before[0]:.1f} at the start and {load_after[0]:.1f} at the end."
    )


def write_study(out_dir: Path, rows: list[dict[str, Any]], header: list[str]) -> Path:
    """``sampler_study.md``, ``.csv`` and ``.png`` in ``out_dir``; returns the markdown's path."""
    plot = plot_fid_vs_nfe(rows, out_dir / f"{NAME}.png", header[0].removeprefix("# "))
    best = fastest_within(rows)
    text = "\n\n".join([*header, markdown_table(rows), *([best] if best else []), f"![FID against NFE]({plot.name})"])
    atomic_write_bytes(out_dir / f"{NAME}.md", (text + "\n").encode())
    atomic_write_bytes(out_dir / f"{NAME}.csv", csv_text(rows).encode())
    print(f"\n{markdown_table(rows)}\n{best}", flush=True)
    return out_dir / f"{NAME}.md"


def sampler_study(cfg: DictConfig, stamp: str, score: ScoreRun) -> dict[str, Any]:
    """Score ``cfg.run`` at every point of ``cfg.sampler_study`` into ``run/eval/<stamp>/``; write the study.

    ``score(cfg, run_dir, out_dir)`` scores one point as ``genlab eval`` does (writes metrics.json, grid.png).
    A refused or failed study leaves no folder behind.
    """
    if cfg.sweep:
        raise GenlabError("experiment=sampler_study scores one run: give run=DIR instead of sweep=.")
    run_dir = check_run_dir(None if OmegaConf.is_missing(cfg, "run") else cfg.run)
    out_dir = run_dir / "eval" / stamp
    try:
        path, rows = _study(cfg, run_dir, out_dir, score)
    except BaseException:
        discard(out_dir)
        raise
    print(f"written to {path}", flush=True)
    return {"run": str(run_dir), "study": str(path), "rows": rows}


def _study(cfg: DictConfig, run_dir: Path, out_dir: Path, score: ScoreRun) -> tuple[Path, list[dict[str, Any]]]:
    run = Run.load(run_dir, cfg.ckpt, cfg.device)
    if not isinstance(run.model, Denoises):
        raise GenlabError(f"experiment=sampler_study compares diffusion samplers; model={run.name} has none.")
    given = extra_options(cfg, "eval", run.generation_options())
    chosen = sorted(set(given) & {"sampler", "steps"})
    if chosen:
        raise GenlabError(
            f"{chosen[0]}={given[chosen[0]]}: experiment=sampler_study chooses the sampler and steps of each point; "
            "set sampler_study.samplers and sampler_study.nfe instead."
        )
    points = study_points(cfg.sampler_study, run.model)
    load_before = os.getloadavg()
    rows, first = [], {}
    for point in points:
        point_cfg = cfg.copy()
        with open_dict(point_cfg):
            point_cfg.update(point.options())
        log.info("sampler study: %s (%d of %d)", point.folder, len(rows) + 1, len(points))
        metrics = score(point_cfg, run_dir, out_dir / point.folder)
        first = first or metrics
        rows.append(study_row(point, metrics, f"{point.folder}/metrics.json"))
    header = [
        f"# Sampler study of {run_dir.name} ({run.checkpoint.name})",
        f"n = {first['n']} samples per point, seed {first['seed']}, {first['features']} features against the "
        f"{first['split']} split of data={first['data']}; NFE = network evaluations per image.",
        machine_note(load_before),
    ]
    return write_study(out_dir, rows, header), rows
