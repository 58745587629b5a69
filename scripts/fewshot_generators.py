"""Judge the generators of a held-out-class study on the held-out test digits, and draw their grids.

    python scripts/fewshot_generators.py --dagan DAGAN_RUN --cddpm CDDPM_RUN --inverted INV_RUN --out docs/img

For every held-out test image (the classes the generators never saw): 10 DAGAN variations, SDEdit
variations guided by the null class and, with ``--inverted``, by the learned class embedding, at
strengths 0.3 / 0.5 / 0.7. Prints the share of variations that the reference classifier of *all*
classes (it only judges) assigns to the source image's class, with CPU seconds per 1,000 images, and
writes ``fewshot_<kind>.png`` grids (one row per held-out class: the input, then its variations).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from omegaconf import open_dict

from genlab.api import Run
from genlab.build import instantiate_datamodule
from genlab.data.classes import config_class_ids
from genlab.imaging import save_grid
from genlab.tasks.invert import all_classes_judge, data_with, judge_classes

STRENGTHS = (0.3, 0.5, 0.7)
SAMPLER = {"sampler": "ddim", "steps": 25}


def heldout_test(run: Run) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The test images of the classes ``run`` never saw (in [-1, 1]) and their dataset classes."""
    seen = config_class_ids(run.config.data)
    held = [int(c) for c in run.config.data.heldout_classes]
    cfg = run.config.copy()
    with open_dict(cfg):
        cfg.data = data_with(run.config.data, True, classes=held, num_classes=len(held))
    test = instantiate_datamodule(cfg, train=False).dataset("test")
    assert not set(seen) & set(held)
    return test.images.float().div(127.5).sub(1), torch.tensor(held)[test.labels], held


def measure(name: str, make, images: torch.Tensor, classes: torch.Tensor, judge) -> tuple[torch.Tensor, dict]:
    """Run ``make(images)`` (N, V, C, H, W), judge it, return (variations, record)."""
    start = time.process_time()
    varied = make(images)
    seconds = time.process_time() - start
    predicted = judge_classes(judge, varied.flatten(0, 1)).view(varied.shape[:2])
    agreement = float((predicted == classes[:, None]).float().mean())
    record = {
        "agreement": round(agreement, 4),
        "cpu_s_per_1000": round(1000 * seconds / varied[:, :, 0, 0, 0].numel(), 1),
    }
    print(f"{name:>28}: class kept {agreement:.3f}  ({record['cpu_s_per_1000']} CPU s per 1,000)", flush=True)
    return varied, record


def grid(path: Path, images: torch.Tensor, varied: torch.Tensor, classes: torch.Tensor, held: list[int]) -> None:
    """One row per held-out class: its first test image, then that image's variations."""
    rows = [torch.cat([images[i : i + 1], varied[i]]) for i in [int((classes == c).nonzero()[0]) for c in held]]
    save_grid(torch.cat(rows), path, 1 + varied.shape[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dagan", type=Path, required=True)
    parser.add_argument("--cddpm", type=Path, required=True)
    parser.add_argument("--inverted", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument(
        "--cache", default=None, help="paths.cache_dir of the reference classifier (default: the run's)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    dagan, cddpm = Run.load(args.dagan, device="cpu"), Run.load(args.cddpm, device="cpu")
    images, classes, held = heldout_test(cddpm)
    judge = all_classes_judge(cddpm.config.data, cddpm.config.eval, args.cache or cddpm.config.paths.cache_dir, "cpu")
    real = float((judge_classes(judge, images) == classes).float().mean())
    print(f"{len(images)} held-out test images; reference classifier accuracy on them {real:.3f}")
    report = {"heldout_test_images": len(images), "reference_on_real": round(real, 4)}
    varied, report["dagan"] = measure("DAGAN, 10 per image", lambda x: dagan.vary(x, 10, 0), images, classes, judge)
    grid(args.out / "fewshot_dagan.png", images, varied[:, :7], classes, held)
    columns = []
    for strength in STRENGTHS:
        edit = lambda x, s=strength: cddpm.edit(x, s, None, 0, **SAMPLER).unsqueeze(1)  # noqa: E731
        out, report[f"sdedit_null_{strength}"] = measure(
            f"SDEdit null class, s={strength}", edit, images, classes, judge
        )
        columns.append(out)
    grid(args.out / "fewshot_sdedit_null.png", images, torch.cat(columns, 1), classes, held)
    if args.inverted is not None:
        inverted = Run.load(args.inverted, device="cpu")
        labels = inverted.model.label_of(classes)
        columns = []
        for strength in STRENGTHS:
            edit = lambda x, s=strength: inverted.edit(x, s, labels, 0, **SAMPLER).unsqueeze(1)  # noqa: E731
            out, report[f"da_fusion_{strength}"] = measure(f"DA-Fusion, s={strength}", edit, images, classes, judge)
            columns.append(out)
        grid(args.out / "fewshot_da_fusion.png", images, torch.cat(columns, 1), classes, held)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
