"""The comparison of translators trained in one sweep (``experiment=translation_paired_vs_unpaired``).

At the end of the multirun, every completed job is scored through :meth:`genlab.api.Run.evaluate` on
the same split and the sweep folder gets:

- ``comparison.md`` / ``comparison.csv``: one row per run: FID, L1, PSNR, SSIM, class consistency,
  cycle reconstruction (two-way translators), training time (CPU and wall seconds, from the
  :class:`~genlab.callbacks.training_clock.TrainingClock` callback) and parameter counts;
- ``side_by_side.png``: the same first test inputs through every run, one row each:
  input A, then each run's translation G(A) in job order, then the true B.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from genlab.api import Run
from genlab.errors import GenlabError
from genlab.imaging import save_grid
from genlab.io import atomic_write_bytes, safe_torch_load
from genlab.tables import csv_text, job_order, markdown_table

log = logging.getLogger("genlab")

# metrics.json / evaluation key → table column
SCORE_COLUMNS = {
    "fid": "FID",
    "l1": "L1",
    "psnr": "PSNR",
    "ssim": "SSIM",
    "class_acc": "class acc",
    "cycle_l1_A": "cycle L1 A",
    "cycle_l1_B": "cycle L1 B",
    "fid_BtoA": "FID B→A",
}
TIME_COLUMNS = {"time/train_cpu_s": "train CPU s", "time/epoch_cpu_s": "CPU s/epoch", "time/train_wall_s": "wall s"}


def completed_runs(sweep_dir: Path) -> list[Path]:
    """The job folders of ``sweep_dir`` whose training completed, in job order."""
    runs = []
    for metrics_file in sorted(sweep_dir.glob("*/metrics.json"), key=lambda p: job_order(p.parent.name)):
        if json.loads(metrics_file.read_text()).get("status") == "completed":
            runs.append(metrics_file.parent)
    return runs


def parameter_counts(run: Run) -> dict[str, int]:
    """Parameters of each top-level network of the run's model (``generator``, ``discriminator_a``, ...)."""
    return {name: sum(p.numel() for p in child.parameters()) for name, child in run.model.named_children()}


def comparison_row(run: Run, split: str) -> dict[str, Any]:
    """One table row: the run's scores on ``split``, its training time and parameter counts."""
    scores = run.evaluate(split=split).metrics
    trained = json.loads((run.directory / "metrics.json").read_text())
    counts = parameter_counts(run)
    row: dict[str, Any] = {"job": run.directory.name, "model": run.name, "data": str(run.config.data.name)}
    row.update({column: scores[key] for key, column in SCORE_COLUMNS.items() if key in scores})
    row.update({column: round(trained[key], 1) for key, column in TIME_COLUMNS.items() if key in trained})
    row["epochs"] = int(run.config.trainer.max_epochs)
    row["generator updates"] = int(safe_torch_load(run.checkpoint)["global_step"])
    generators = {k: v for k, v in counts.items() if k.startswith("generator")}
    row["G params"] = " + ".join(f"{v:,}" for v in generators.values())
    row["all params"] = f"{sum(counts.values()):,}"
    return row


def side_by_side(runs: list[Run], split: str, n: int, path: Path) -> Path:
    """``path``: one row of inputs A, one row of translations per run, one row of targets B."""
    inputs, targets = runs[0].split_pairs(split, n)
    for run in runs[1:]:
        other, _ = run.split_pairs(split, n)
        if not torch.equal(other, inputs):
            raise GenlabError(
                f"the runs of the comparison do not share the {split} inputs ({runs[0].directory.name} and "
                f"{run.directory.name}): compare runs trained on the same images."
            )
    rows = [inputs, *(run.translate(inputs) for run in runs), targets]
    channels = max(row.shape[1] for row in rows)
    return save_grid(torch.cat([row.expand(-1, channels, -1, -1) for row in rows]), path, nrow=len(inputs))


def write_translation_comparison(sweep_dir: Path, split: str = "test", n_images: int = 8) -> str | None:
    """Score the sweep's completed translation runs; write ``comparison.md``, ``.csv`` and ``side_by_side.png``."""
    runs = [Run.load(job, device="cpu") for job in completed_runs(sweep_dir)]
    if not runs:
        return None
    rows = [comparison_row(run, split) for run in runs]
    picture = side_by_side(runs, split, n_images, sweep_dir / "side_by_side.png")
    order = ", ".join(f"{run.name} G(A)" for run in runs)
    text = (
        f"# Translation comparison: {sweep_dir.name}\n\nScores on the {split} split "
        f"(`genlab eval`: FID of G(A) against B, L1/PSNR/SSIM against the true pairs, class acc = the reference "
        f"classifier's accuracy on G(A) against the pair's class; cycle L1 on [-1, 1]).\n\n{markdown_table(rows)}\n\n"
        f"![{split} inputs A, {order}, true B]({picture.name})\n\nRows of {picture.name}: input A, {order}, true B.\n"
    )
    atomic_write_bytes(sweep_dir / "comparison.md", text.encode())
    atomic_write_bytes(sweep_dir / "comparison.csv", csv_text(rows).encode())
    return text


class TranslationComparison(Callback):
    """Hydra callback: :func:`write_translation_comparison` on the sweep folder when the multirun ends.

    Args:
        split: the split scored and shown.
        n_images: inputs in ``side_by_side.png``.
    """

    def __init__(self, split: str = "test", n_images: int = 8) -> None:
        self.split = split
        self.n_images = n_images

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            text = write_translation_comparison(sweep_dir, self.split, self.n_images) if sweep_dir.is_dir() else None
        except GenlabError as err:
            log.warning("translation comparison not written: %s", err)
            return
        if text:
            print(f"\n{text}\nwritten to {sweep_dir / 'comparison.md'}")
