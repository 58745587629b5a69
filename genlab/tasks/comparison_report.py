"""The report of a model comparison: ``comparison.md`` (per arm mean ± std over seeds, per run, skipped arms),
``comparison.csv`` (one row per run, raw numbers) and ``comparison.png`` (every arm's samples side by side)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from genlab.callbacks.compare import comparison_image
from genlab.io import atomic_write_bytes
from genlab.tables import csv_text, markdown_table

# Columns of the per-arm table, with their headings.
COLUMNS = {
    "fid": "FID ↓",
    "kid_mean": "KID ↓",
    "precision": "precision",
    "recall": "recall",
    "class_coverage": "class coverage",
    "class_acc": "class accuracy",
    "params": "parameters",
    "fit_seconds": "training s (wall)",
    "fit_cpu_seconds": "training CPU s",
    "images_seen": "images seen",
    "sample_s_per_1000": "sampling s / 1,000 img",
}
RUN_COLUMNS = ("arm", "seed", "status", *COLUMNS, "sampler", "job")
INTEGERS = ("params", "images_seen")


def mean_std(values: list[float], integer: bool = False) -> str:
    """``mean ± std`` over seeds (the sample std), or the value alone for one run."""
    mean = statistics.fmean(values)
    text = f"{mean:,.0f}" if integer else f"{mean:.4g}"
    if len(values) < 2:
        return text
    std = statistics.stdev(values)
    return f"{text} ± {std:,.0f}" if integer else f"{text} ± {std:.2g}"


def arm_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per arm (in launch order): mean ± std of every column over its completed runs."""
    arms: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        arms.setdefault(record["arm"], []).append(record)
    rows = []
    for arm, members in arms.items():
        done = [m for m in members if m["status"] == "completed"]
        row: dict[str, Any] = {"arm": arm, "runs": len(done)}
        for key, heading in COLUMNS.items():
            values = [float(m[key]) for m in done if isinstance(m.get(key), int | float)]
            row[heading] = mean_std(values, key in INTEGERS) if values else ""
        row["sampler"] = next((m["sampler"] for m in done if m.get("sampler")), "")
        if len(done) < len(members):
            row["note"] = "; ".join(sorted({m.get("reason") or m["status"] for m in members if m not in done}))
        rows.append(row)
    return rows


def _tile_row(record: dict[str, Any]) -> dict[str, Any]:
    """The label of an arm's grid in comparison.png: its name and headline scores."""
    scores = ("fid", "kid_mean", "precision", "recall", "class_coverage", "class_acc")
    return {"run": f"{record['arm']} (seed {record['seed']})", **{k: record[k] for k in scores if k in record}}


def write_report(sweep_dir: Path, records: list[dict[str, Any]], protocol: dict[str, Any]) -> Path:
    """Write comparison.md / .csv / .png into ``sweep_dir`` and print the per-arm table; return the markdown's path."""
    arms = arm_rows(records)
    first_seed = min((r["seed"] for r in records if r.get("grid")), default=None)
    tiles = [r for r in records if r.get("grid") and r["seed"] == first_seed]
    results = [{"run": r["arm"], "eval_dir": str(Path(r["grid"]).parent)} for r in tiles]
    has_image = comparison_image(results, [_tile_row(r) for r in tiles], sweep_dir / "comparison.png")
    present = [k for k in RUN_COLUMNS if any(k in r for r in records)]
    runs = [{k: r.get(k, "") for k in present} for r in records]
    text = f"# Model comparison ({sweep_dir.name})\n\n"
    text += "".join(f"- {key}: {value}\n" for key, value in protocol.items())
    text += f"\n## Per arm (mean ± std over seeds)\n\n{markdown_table(arms)}\n\n## Per run\n\n{markdown_table(runs)}\n"
    skipped = [r for r in records if r["status"] == "skipped"]
    if skipped:
        text += "\n## Skipped\n\n" + "".join(f"- {r['arm']} (seed {r['seed']}): {r['reason']}\n" for r in skipped)
    if has_image:
        text += (
            f"\n## Samples\n\nThe runs of seed {first_seed}, every grid from the same latent noise; conditional "
            "arms: one row per class.\n\n![samples](comparison.png)\n"
        )
    atomic_write_bytes(sweep_dir / "comparison.md", text.encode())
    atomic_write_bytes(sweep_dir / "comparison.csv", csv_text(runs).encode())
    print(f"\n{markdown_table(arms)}")
    for record in skipped:
        print(f"skipped {record['arm']} (seed {record['seed']}): {record['reason']}")
    return sweep_dir / "comparison.md"
