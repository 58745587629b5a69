"""Measure RePaint inpainting of a diffusion run on the first test images: masked-region PSNR/L1 and class
consistency for several r (same inputs, masks and seeds), the fill's agreement with a requested label, and
CPU seconds per image.

    python scripts/inpaint_measure.py --run outputs/train/<cddpm run> --n 200 --masks center half_bottom \
        --resample 1 3 10 --steps 50 --out inpaint.json --picture inpaint.png

Rows: for each mask and r, the fill guided by the original's label (``guided``, what `genlab sample split=`
does on a conditional run) and unguided (the null class); ``relabel`` rows ask for another class (the
original's label + 1..9, seeded) and report ``label_acc``. CPU seconds are the process's (threads=1 advised).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from genlab.api import Run
from genlab.diffusion.inpainting import plan
from genlab.diffusion.masks import make_masks
from genlab.imaging import comparison_grid, save_picture
from genlab.metrics.inpainting import masked_errors, predicted_classes
from genlab.metrics.scores import class_accuracy
from genlab.scoring.reference import reference_classifier
from genlab.tasks.inpaint import masked_view


def measure(run: Run, images, labels, masks, guide, resample: int, args) -> tuple[dict, torch.Tensor]:
    """One setting: inpaint, time it, score it."""
    options = {"sampler": "ddim", "steps": args.steps, "eta": args.eta, "jump": args.jump, "resample": resample}
    nfe = plan(run.model, guide, **options)[2]
    started = time.process_time()
    filled = run.inpaint(images, masks, guide, seed=args.seed, **options)
    seconds = time.process_time() - started
    row = {
        "r": resample,
        "j": args.jump,
        "steps": args.steps,
        "nfe_per_image": nfe,
        **masked_errors(filled, images, masks),
    }
    predicted = predicted_classes(args.classifier, filled)
    row["class_consistency"] = class_accuracy(predicted, labels)
    row["cpu_s_per_1000"] = round(1000 * seconds / len(images), 1)
    return row, filled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--masks", nargs="+", default=["center", "half_bottom"])
    parser.add_argument("--resample", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument(
        "--unguided", type=int, nargs="*", default=None, help="r values also run unguided (default all)"
    )
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--eta", type=float, default=0.0)
    parser.add_argument("--jump", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--relabel", type=int, nargs="*", default=[], help="r values of the relabel rows (centre)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="inpaint_measure.json")
    parser.add_argument("--picture", default=None, help="a PNG: per mask, 8 rows original | masked | each r")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = Run.load(args.run, device="cpu")
    config = run.config
    args.classifier = reference_classifier(config.data, config.eval, config.paths.cache_dir, torch.device("cpu"))
    images, labels = run.split_images("test", args.n)
    rows, pictures = [], []
    unguided = args.resample if args.unguided is None else args.unguided
    for kind in args.masks:
        masks = make_masks(kind, len(images), images.shape[-1], torch.Generator().manual_seed(args.seed))
        columns = [images[:8], masked_view(images[:8], masks[:8])]
        for resample in args.resample:
            for guide, name in ((labels, "guided"), (None, "unguided")):
                if guide is None and resample not in unguided:
                    continue
                row, filled = measure(run, images, labels, masks, guide, resample, args)
                rows.append({"mask": kind, "labels": name, **row})
                print(json.dumps(rows[-1]), flush=True)
                if guide is not None:
                    columns.append(filled[:8])
        pictures.append(comparison_grid(columns))
    shift = torch.randint(1, run.model.num_classes, (len(labels),), generator=torch.Generator().manual_seed(args.seed))
    wanted = (labels + shift) % run.model.num_classes
    masks = make_masks("center", len(images), images.shape[-1], torch.Generator().manual_seed(args.seed))
    for resample in args.relabel:
        row, filled = measure(run, images, labels, masks, wanted, resample, args)
        row["label_acc"] = class_accuracy(predicted_classes(args.classifier, filled), wanted)
        rows.append({"mask": "center", "labels": "relabel", **row})
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    if args.picture:
        save_picture(torch.cat(pictures, 1), Path(args.picture))


if __name__ == "__main__":
    main()
