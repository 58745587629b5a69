"""Sampling cost of a trained diffusion run: DDPM over all T steps against DDIM with few steps.

    python scripts/sampling_speed.py outputs/train/<date_time>_ddpm_digits [--n 16] [--ddim-steps 50]

Both samplers use the same model, batch and seed; prints wall-clock and CPU seconds, images/s for
each and the speed-up of DDIM. Wall-clock numbers are only comparable on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from genlab.models.ddpm import DiffusionModule
from genlab.tasks.common import load_run_config, load_trained_model, pick_device, resolve_checkpoint


def time_sampler(model: DiffusionModule, n: int, seed: int, **options) -> dict[str, float]:
    """Generate ``n`` images once with ``options``; wall and process CPU seconds, images/s."""
    labels = model.parse_labels(None, n)
    labels = None if labels is None else labels.to(model.device)
    generator = torch.Generator(model.device).manual_seed(seed)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    model.generate(n, labels, generator, **options)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"seconds": wall, "cpu_seconds": cpu, "images_per_s": n / wall}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="folder of a diffusion train run")
    parser.add_argument("--ckpt", default="last", help="last | best | PATH")
    parser.add_argument("--n", type=int, default=16, help="images per sampler (one batch)")
    parser.add_argument("--ddim-steps", type=int, default=50)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)

    run_cfg = load_run_config(args.run)
    model = load_trained_model(run_cfg, resolve_checkpoint(args.run, args.ckpt), pick_device(args.device))
    if not isinstance(model, DiffusionModule):
        parser.error(f"{args.run} is not a diffusion run (model={run_cfg.model.name}).")
    model.sample_batch_size = max(model.sample_batch_size, args.n)
    T = model.schedule.timesteps
    time_sampler(model, min(args.n, 2), args.seed, sampler="ddim", steps=2)  # warm-up
    results = {
        f"ddpm-{T}": time_sampler(model, args.n, args.seed, sampler="ddpm"),
        f"ddim-{args.ddim_steps}": time_sampler(model, args.n, args.seed, sampler="ddim", steps=args.ddim_steps),
    }
    print(f"{'sampler':<12}{'seconds':>10}{'cpu s':>10}{'images/s':>12}")
    for name, r in results.items():
        print(f"{name:<12}{r['seconds']:>10.2f}{r['cpu_seconds']:>10.2f}{r['images_per_s']:>12.3f}")
    (ddpm, slow), (ddim, fast) = results.items()
    print(
        f"{ddim} is {slow['seconds'] / fast['seconds']:.1f}x faster than {ddpm} (CPU time ratio "
        f"{slow['cpu_seconds'] / max(fast['cpu_seconds'], 1e-9):.1f}x) on {model.device}, batch {args.n}."
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
