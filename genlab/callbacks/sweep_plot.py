"""A metric of each arm of a sweep against the training-set size (``accuracy_vs_size.png``, ``fid_vs_size.png``)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from genlab.tables import varying_overrides

SIZE_KEY = "data.train_per_class"


def size_series(rows: list[dict[str, Any]], metric: str = "test/acc") -> dict[str, dict[str, list[float]]]:
    """{arm: {size: [metric of each seed]}} where arm = the overrides other than seed and size."""
    series: dict[str, dict[str, list[float]]] = {}
    for row, overrides in zip(rows, varying_overrides(rows), strict=True):
        if metric not in row:
            continue
        sizes = [o.split("=", 1)[1] for o in overrides if o.startswith(f"{SIZE_KEY}=")]
        if not sizes:
            continue
        arm = " ".join(o for o in overrides if not o.startswith(("seed=", f"{SIZE_KEY}="))) or "(defaults)"
        size = "all" if sizes[0] in ("null", "None") else sizes[0]
        series.setdefault(arm, {}).setdefault(size, []).append(float(row[metric]))
    return series


def _size_order(size: str) -> float:
    return float("inf") if size == "all" else float(size)


def plot_metric_vs_size(rows: list[dict[str, Any]], path: Path, metric: str = "test/acc") -> Path | None:
    """Mean ± std of ``metric`` over seeds per arm and ``data.train_per_class``; None when not swept."""
    series = size_series(rows, metric)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({size for per_size in series.values() for size in per_size}, key=_size_order)
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for arm, per_size in sorted(series.items()):
        xs = [i for i, size in enumerate(sizes) if size in per_size]
        means = [statistics.fmean(per_size[sizes[i]]) for i in xs]
        stds = [statistics.stdev(per_size[sizes[i]]) if len(per_size[sizes[i]]) > 1 else 0.0 for i in xs]
        axes.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=arm.replace("augment=", "")[:60])
    axes.set_xticks(range(len(sizes)), [str(size) for size in sizes])
    axes.set_xlabel("real training images per class (data.train_per_class)")
    axes.set_ylabel(f"{metric} (mean ± std over seeds)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
