"""genlab benchmark: training overhead against a plain PyTorch loop, data path against torchvision,
DDPM vs DDIM sampling, GAN sampling and evaluation cost. Prints one table and writes bench.json.

    python -m scripts.bench --quick                       # < 5 min on 2 CPU cores
    python -m scripts.bench --out bench.json              # the full run (docs/bench.md)
    python -m scripts.bench --device cuda --precision bf16-mixed --channels-last --compile --on-device
    python -m scripts.bench --models dcgan ddpm --sections train

Training: genlab's LightningModule + Trainer (with the callbacks and logger a user gets from
``configs/train.yaml``) and a plain loop (:mod:`scripts.bench.plain_loops`: the same nets, built from
the same config with the same seed, same optimizers, batch size and in-memory batches) alternate in the
same process: K genlab steps, K plain steps, and so on. Each side's figure is the median images/s of
its timed windows after warm-up; windows never include genlab's end-of-epoch work (validation, grids,
checkpoints), which the plain loop does not do. Sampling and evaluation use untrained networks: their
cost does not depend on the weights.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from scripts.bench.common import FULL, QUICK, machine_info, table
from scripts.bench.data_path import DATASETS, bench_data, write_fixture_data
from scripts.bench.first_result import FIRST_RESULT, bench_first_result, estimate_gpu_preset
from scripts.bench.sampling import bench_eval, bench_sampling
from scripts.bench.training import TRAIN_MODELS, bench_training

SECTIONS = ("train", "data", "sample", "eval", "first_result", "quality")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer windows and images (< 5 min on 2 CPU cores)")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON file of the results")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--models", nargs="+", choices=list(TRAIN_MODELS), default=list(TRAIN_MODELS))
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument(
        "--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS[:4]),
        help="first_result and quality (long: an hour and ~40 min) run only when named",
    )  # fmt: skip
    parser.add_argument("--first-result-models", nargs="+", choices=list(FIRST_RESULT), default=list(FIRST_RESULT))
    parser.add_argument("--first-result-jobs", type=int, default=1, help="first_result: commands side by side")
    parser.add_argument("--dcgan-minutes", type=float, default=5.0, help="quality: the DCGAN budget")
    parser.add_argument("--ddpm-minutes", type=float, default=10.0, help="quality: the DDPM budget")
    parser.add_argument("--seed", type=int, default=0, help="quality: seed of both sides")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--precision", default="32-true", help="trainer.precision, e.g. bf16-mixed")
    parser.add_argument("--channels-last", action="store_true", help="speed.channels_last=true")
    parser.add_argument("--compile", action="store_true", help="speed.compile=true (torch.compile)")
    parser.add_argument("--compile-backend", default="inductor", help="speed.compile_backend")
    parser.add_argument("--on-device", action="store_true", help="data.on_device=true augment.on_device=true")
    parser.add_argument("--warmup", type=int, default=None, help="training warm-up steps (overrides the preset)")
    parser.add_argument("--window", type=int, default=None, help="steps per timed training window")
    parser.add_argument("--windows", type=int, default=None, help="timed windows per side")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the training benchmarks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench: --device cuda, but torch sees no CUDA GPU.")
    device = torch.device(args.device)
    settings = copy.copy(QUICK if args.quick else FULL)
    for key in ("warmup", "window", "windows"):
        if getattr(args, key) is not None:
            setattr(settings, key, getattr(args, key))
    switches = {
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "compile_backend": args.compile_backend,
        "on_device": args.on_device,
    }
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("genlab").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    info = machine_info(device)
    print(
        f"genlab bench on {info['device_name']} ({info['device']}); CPU {info['cpu']}, {info['cpu_cores']} cores, "
        f"{info['torch_threads']} torch threads; torch {info['torch']}; switches {switches}; "
        f"{'quick' if args.quick else 'full'}; load average {info['load_average']}",
        flush=True,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "train" in args.sections:
            for name in args.models:
                rows.append(bench_training(name, settings, device, switches, tmp, args.overrides))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
        if "data" in args.sections:
            root = tmp / "data"
            write_fixture_data(root, settings.data_images)
            for name in args.datasets:
                rows.extend(bench_data(name, settings, device, root, tmp))
        if "sample" in args.sections:
            rows.extend(bench_sampling(settings, device, tmp))
        if "eval" in args.sections:
            rows.extend(bench_eval(settings, device, tmp))
        if "first_result" in args.sections:
            rows.extend(bench_first_result(args.first_result_models, tmp, args.first_result_jobs))
            rows.append(estimate_gpu_preset(tmp))
        if "quality" in args.sections:
            from scripts.bench.quality import bench_quality  # needs diffusers: pip install -e ".[bench]"

            minutes = {"dcgan": args.dcgan_minutes, "ddpm": args.ddpm_minutes}
            rows.extend(bench_quality(minutes, args.seed, tmp, {}))
    info["seconds"] = time.perf_counter() - started
    info["cpu_seconds"] = time.process_time() - cpu_started  # does not grow when other programs share the cores
    info["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = {"machine": info, "switches": switches, "quick": args.quick, "settings": vars(settings), "rows": rows}
    print()
    print(table(rows))
    print(
        f"\n{info['seconds']:.0f} s wall, {info['cpu_seconds']:.0f} s CPU; load average at the end "
        f"{info['load_average_end']}; written {args.out}"
    )
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
