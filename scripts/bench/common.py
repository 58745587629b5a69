"""What every benchmark section shares: settings, composed configs, memory and machine readings, the table."""

from __future__ import annotations

import math
import os
import platform
import resource
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from genlab.build import CONFIG_DIR

COLUMNS = ("section", "benchmark", "genlab", "baseline", "ratio", "goal", "unit", "peak_rss_mb", "cuda_max_mb")


@dataclass
class Settings:
    """How much to measure: ``--quick`` or the full run."""

    warmup: int  # training steps before timing (each side)
    window: int  # steps per timed window
    windows: int  # timed windows per side
    data_rounds: int  # timed epochs per data-path loader
    data_images: int  # training images in the mnist/cifar10 fixture files
    sample_n: int  # images per DDPM/DDIM sample
    sample_size: int  # image size of the sampling benchmark
    gan_n: int  # images per GAN sampling round
    eval_sizes: tuple[int, ...]


QUICK = Settings(
    warmup=2, window=2, windows=3, data_rounds=2, data_images=2000, sample_n=2, sample_size=16, gan_n=256,
    eval_sizes=(2000, 10000),
)  # fmt: skip
FULL = Settings(
    warmup=2, window=3, windows=5, data_rounds=3, data_images=3000, sample_n=4, sample_size=32, gan_n=1024,
    eval_sizes=(2000, 10000),
)  # fmt: skip


def compose_train(overrides: list[str], run_dir: Path) -> DictConfig:
    """``configs/train.yaml`` with ``overrides``, writing into ``run_dir``."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.run_dir = str(run_dir)
        cfg.paths.output_root = str(run_dir.parent)
        cfg.paths.cache_dir = str(run_dir.parent / "cache")
    return cfg


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS counter of this process (Linux ≥ 4.0), when allowed."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last :func:`reset_peak_rss` (VmHWM), in MB."""
    with suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU, cores, threads, versions, device and load average: written beside the results."""
    return {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def row(section: str, benchmark: str, genlab: float | None, baseline: float | None = None, **extra: Any) -> dict:
    """One result: genlab's figure, the baseline's, their ratio, and any extra fields."""
    ratio = genlab / baseline if genlab is not None and baseline else None
    out = {"section": section, "benchmark": benchmark, "genlab": genlab, "baseline": baseline, "ratio": ratio}
    out.update({k: extra.get(k) for k in COLUMNS if k not in out})
    out.update({k: v for k, v in extra.items() if k not in COLUMNS})
    return out


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(rows: list[dict]) -> str:
    """The rows as one markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)
