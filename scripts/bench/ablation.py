"""Recipe ablation at a wall-clock budget: genlab's DCGAN or DDPM with each variant's overrides trained for the
same minutes and scored by the quality section's FID (its sampling network and, where it has an EMA, its live
network), one variant after another in this process.

    python -m scripts.bench.ablation dcgan --minutes 5 --threads 1 \\
        --variant default= --variant "half_life=model.ema_half_life_images=6400"

A variant is ``name=override override ...`` (an empty list: the defaults). Results go to ``--out`` (JSON) and
are printed as a markdown table. Run two ablations side by side with ``--threads 1`` each on 2 cores; compare
variants only within one ablation run.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import warnings
from pathlib import Path

import torch

from scripts.bench.quality import QualityScorer, genlab_side

COLUMNS = ("variant", "steps", "fid", "live_fid", "classes", "params", "wall_s")


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``name=override override ...`` → (name, overrides)."""
    name, _, overrides = text.partition("=")
    if not name or not _:
        raise SystemExit(f"--variant {text!r}: write name=override override ... (name= alone for the defaults)")
    return name, overrides.split()


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=("dcgan", "ddpm"))
    parser.add_argument("--minutes", type=float, required=True, help="training budget of every variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (also passed as threads=)")
    parser.add_argument("--variant", action="append", required=True, help="name=override override ...")
    parser.add_argument("--out", type=Path, default=Path("ablation.json"))
    args = parser.parse_args(argv)
    variants = [parse_variant(text) for text in args.variant]
    threads = [f"threads={args.threads}"] if args.threads else []
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("genlab").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        score = QualityScorer(tmp)
        for name, overrides in variants:
            quiet = ["callbacks.progress_bar=null", "trainer.enable_progress_bar=false", *threads]
            result = genlab_side(args.model, args.minutes, args.seed, tmp, [*quiet, *overrides], score)
            rows.append({"variant": name, "overrides": overrides, **result})
            print(json.dumps(rows[-1]), flush=True)
            args.out.write_text(json.dumps(rows, indent=2))
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in COLUMNS) + " |")
    return rows


if __name__ == "__main__":
    main()
