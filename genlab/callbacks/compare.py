"""Side-by-side comparison of scored runs: ``comparison.md``, ``comparison.csv`` and ``comparison.png``.

Written by ``genlab eval sweep=DIR`` into the sweep folder, and by ``genlab eval -m run=A,B`` (through
the :class:`EvalComparison` Hydra callback) into ``outputs/compare/<date_time>/``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from PIL import Image, ImageDraw, ImageFont

from genlab.callbacks.sweep import SUMMARY_PREFIXES
from genlab.io import atomic_write_bytes
from genlab.tables import csv_text, markdown_table

log = logging.getLogger("genlab")

# Metrics shown in the comparison (class_hist, a list, stays in each run's metrics.json).
EXTRA_COLUMNS = ("n", "features")
TILE_HEIGHT = 256
LABEL_SKIP = ("run", "n", "features", "status")
LABEL_METRICS = ("fid", "kid_mean", "precision", "recall", "class_acc", "class_coverage", "test/acc")


def run_overrides(run_dir: str | Path) -> dict[str, str]:
    """The ``key=value`` overrides a run was trained with (``.hydra/overrides.yaml``)."""
    path = Path(run_dir) / ".hydra" / "overrides.yaml"
    overrides = (yaml.safe_load(path.read_text()) if path.is_file() else None) or []
    return dict(item.split("=", 1) if "=" in item else (item, "") for item in overrides)


def differing_overrides(runs: list[str]) -> list[dict[str, str]]:
    """Per run, only the overrides whose value is not the same in every run."""
    all_overrides = [run_overrides(run) for run in runs]
    keys: list[str] = []
    for overrides in all_overrides:
        keys += [k for k in overrides if k not in keys]
    differing = [k for k in keys if len({o.get(k, "(default)") for o in all_overrides}) > 1]
    return [{k: o.get(k, "(default)") for k in differing} for o in all_overrides]


def comparison_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run: its name, the overrides that differ, then its metrics."""
    rows = []
    overrides = differing_overrides([r["run"] for r in results])
    for result, differing in zip(results, overrides, strict=True):
        metrics = result["metrics"]
        row: dict[str, Any] = {"run": Path(result["run"]).name, **differing}
        row.update({k: metrics[k] for k in EXTRA_COLUMNS if k in metrics})
        row.update(
            {
                k: v
                for k, v in metrics.items()
                if k.startswith(SUMMARY_PREFIXES) and isinstance(v, int | float) and not isinstance(v, bool)
            }
        )
        if "status" in metrics:
            row["status"] = metrics["status"]
        rows.append(row)
    return rows


def _label(row: dict[str, Any], width: int = 44) -> str:
    """Run name, its differing overrides, then its headline scores, in lines of at most ``width`` characters."""
    overrides = [f"{k}={v}" for k, v in row.items() if k not in LABEL_SKIP and not k.startswith(SUMMARY_PREFIXES)]
    headline = [f"{k}={row[k]:.4g}" for k in LABEL_METRICS if isinstance(row.get(k), float)]
    return "\n".join([str(row["run"]), *_wrap(overrides, width), *_wrap(headline, width)])


def _wrap(parts: list[str], width: int) -> list[str]:
    lines, line = [], ""
    for part in parts:
        if line and len(line) + len(part) + 2 > width:
            lines.append(line)
            line = part
        else:
            line = f"{line}, {part}" if line else part
    return [*lines, line] if line else lines


def comparison_image(results: list[dict[str, Any]], rows: list[dict[str, Any]], path: Path) -> bool:
    """The runs' sample grids side by side, each under its label; False when no run has a grid."""
    tiles = []
    font = ImageFont.load_default()
    for result, row in zip(results, rows, strict=True):
        grid = Path(result["eval_dir"]) / "grid.png" if result["eval_dir"] else None
        if grid is None or not grid.is_file():
            continue
        with Image.open(grid) as image:
            scaled = image.convert("RGB").resize(
                (round(image.width * TILE_HEIGHT / image.height), TILE_HEIGHT), Image.Resampling.NEAREST
            )
        width = max(scaled.width, 200)
        label = _label(row, int((width - 8) // font.getlength("0")))
        band = 14 * (label.count("\n") + 1) + 8
        tile = Image.new("RGB", (width, TILE_HEIGHT + band), "white")
        ImageDraw.Draw(tile).multiline_text((4, 4), label, fill="black", font=font, spacing=2)
        tile.paste(scaled, (0, band))
        tiles.append(tile)
    if not tiles:
        return False
    gap = 8
    canvas = Image.new(
        "RGB", (sum(t.width for t in tiles) + gap * (len(tiles) - 1), max(t.height for t in tiles)), "white"
    )
    x = 0
    for tile in tiles:
        canvas.paste(tile, (x, 0))
        x += tile.width + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return True


def write_comparison(out_dir: Path, results: list[dict[str, Any]]) -> Path:
    """Write comparison.md / .csv / .png into ``out_dir``; return the markdown's path."""
    rows = comparison_rows(results)
    has_image = comparison_image(results, rows, out_dir / "comparison.png")
    text = f"# Comparison of {len(rows)} runs\n\n{markdown_table(rows)}\n"
    text += "\nEach run's metrics.json:\n\n" + "".join(
        f"- {Path(r['run']).name}: {r['eval_dir']}/metrics.json\n" for r in results if r["eval_dir"]
    )
    if has_image:
        text += "\n![samples](comparison.png)\n"
    atomic_write_bytes(out_dir / "comparison.md", text.encode())
    atomic_write_bytes(out_dir / "comparison.csv", csv_text(rows).encode())
    print(f"\n{markdown_table(rows)}")
    return out_dir / "comparison.md"


class EvalComparison(Callback):
    """Collects the result of each ``genlab eval -m`` job; writes the comparison when the sweep ends."""

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status == JobStatus.COMPLETED and isinstance(job_return.return_value, dict):
            self.results.append(job_return.return_value)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.results:
            path = write_comparison(Path(config.hydra.sweep.dir), self.results)
            print(f"written to {path}")
