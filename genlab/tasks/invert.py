"""``genlab invert run=CDDPM_RUN classes=[5,6,7,8,9] k=5``: learn embeddings of new classes of a frozen
class-conditional DDPM from k real images each (class inversion, DA-Fusion's textual inversion offline).

The new run folder holds ``.hydra/config.yaml`` (the base run's config with the extended model and an
``inversion`` node recording the base checkpoint, classes, k and the images' data), ``checkpoints/
inversion.ckpt`` (``last.ckpt`` links to it, so ``genlab sample``, SDEdit and ``augment=da_fusion`` load
it like any run), ``samples.png`` (one row per new class) and ``metrics.json`` (loss, time, and the
class accuracy of ``n_eval`` samples per new class judged by a reference classifier of all classes).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor

from genlab import progress
from genlab.api import Run
from genlab.build import instantiate_model, pick_device, resolve_checkpoint
from genlab.capabilities import Denoises
from genlab.data.classes import config_class_ids
from genlab.data.datasets import TensorSplit
from genlab.errors import GenlabError
from genlab.imaging import save_grid
from genlab.io import atomic_torch_save, safe_torch_load, write_json
from genlab.metrics.features import file_digest
from genlab.scoring.reference import reference_classifier
from genlab.tasks.common import CONFIG_PATH, discard, run_task

log = logging.getLogger("genlab")

INVERTED_TARGET = "genlab.models.inversion.InvertedDiffusionModule"
INVERSION_NET = "genlab.nets.class_inversion.InversionUNet"


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def data_with(data_cfg: DictConfig, resolve: bool = False, **changes: Any) -> DictConfig:
    """A standalone copy of a data node with ``changes``: unresolved (to record) or resolved (to instantiate)."""
    node = OmegaConf.create(OmegaConf.to_container(data_cfg, resolve=resolve))
    with open_dict(node):
        for key, value in changes.items():
            node[key] = value
    return node


def dataset_classes(data_cfg: DictConfig) -> int:
    """How many classes the dataset of ``data_cfg`` has, whatever subset the config keeps."""
    full = data_with(data_cfg, True, classes=None, heldout_classes=None, train_per_class=None, subset_seed=None)
    splits = instantiate(full, augmentation=None, _recursive_=False).load_splits()
    return max(int(split.labels.max()) for split in splits.values() if len(split.labels)) + 1


def all_classes_judge(data_cfg: DictConfig, eval_settings: DictConfig, cache_dir: str | Path, device: Any) -> Any:
    """The reference classifier of every class of ``data_cfg``'s dataset (trained on all of them: it only judges)."""
    total = dataset_classes(data_cfg)
    every = data_with(
        data_cfg, True, classes=None, heldout_classes=None, num_classes=total, train_per_class=None, subset_seed=None
    )
    return reference_classifier(every, eval_settings, cache_dir, torch.device(device))


@torch.no_grad()
def judge_classes(judge: Any, images: Tensor) -> Tensor:
    """The judge's predicted dataset class of each image (in [-1, 1])."""
    device = next(judge.parameters()).device
    return torch.cat([judge.features_and_logits(chunk.to(device))[1].argmax(1).cpu() for chunk in images.split(250)])


def check_invertible(run: Run, classes: Any, k: Any) -> tuple[list[int], list[int]]:
    """(the base model's dataset class ids, the new classes), or a GenlabError naming the option."""
    if str(run.config.model.get("_target_")) == INVERTED_TARGET:
        base = run.config.get("inversion", {}).get("base_run", "its base run")
        raise GenlabError(f"run={run.directory} is already an inversion: invert its base run ({base}) instead.")
    if not isinstance(run.model, Denoises) or run.model.num_classes == 0:
        raise GenlabError(
            f"run={run.directory} is a {run.name} run: genlab invert learns new class embeddings of a "
            "class-conditional diffusion model (train model=cddpm on the seen classes first)."
        )
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise GenlabError(f"k={k} must be an integer ≥ 1 (real images per new class).")
    numbers = isinstance(classes, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in classes)
    if not numbers or not classes:
        raise GenlabError(f"classes={classes} must be a non-empty list of dataset class numbers, e.g. [5,6,7,8,9].")
    if len(set(classes)) != len(classes):
        raise GenlabError(f"classes={classes} names a class twice.")
    known = config_class_ids(run.config.data)
    again = [c for c in classes if c in known]
    if again:
        raise GenlabError(
            f"classes={classes}: the model was trained on class {again[0]} already (it knows {known}); class "
            "inversion learns classes it never saw. Pass only new classes."
        )
    return known, list(classes)


def inversion_data(
    run_cfg: DictConfig, classes: list[int], k: int, subset_seed: int | None
) -> tuple[DictConfig, TensorSplit]:
    """(the data node of the images inverted, to record: the base dataset's ``classes`` relabelled, ``k`` images
    each; those images)."""
    seed = subset_seed if subset_seed is not None else OmegaConf.select(run_cfg, "data.split_seed", default=0)
    changes = {"classes": classes, "num_classes": len(classes), "subset_seed": seed}
    every = instantiate(
        data_with(run_cfg.data, True, **changes, train_per_class=None), augmentation=None, _recursive_=False
    )
    counts = torch.bincount(every.dataset("train").labels, minlength=len(classes))
    if k > int(counts.min()):
        small = classes[int(counts.argmin())]
        raise GenlabError(f"k={k} is larger than the {int(counts.min())} training images of class {small}.")
    chosen = instantiate(
        data_with(run_cfg.data, True, **changes, train_per_class=k), augmentation=None, _recursive_=False
    )
    return data_with(run_cfg.data, **changes, train_per_class=k), chosen.real_train_split()


def inverted_config(run: Run, data: DictConfig, known: list[int], classes: list[int], options: dict) -> DictConfig:
    """The base run's config with the extended model and the ``inversion`` record."""
    cfg = OmegaConf.create(OmegaConf.to_container(run.config, resolve=False))
    with open_dict(cfg):
        cfg.model._target_ = INVERTED_TARGET
        cfg.model.name = f"{run.name}_inversion"
        cfg.model.learned_classes = classes
        cfg.model.base_class_ids = known
        cfg.model.net._target_ = INVERSION_NET
        cfg.model.net.new_classes = len(classes)
        cfg.model.net.vectors = options["vectors"]
        cfg.model.net.timesteps = "${schedule.timesteps}"
        cfg.inversion = {
            "base_run": str(run.directory),
            "base_checkpoint": file_digest(run.checkpoint),
            "classes": classes,
            "k": int(data.train_per_class),
            **options,
            "data": OmegaConf.to_container(data, resolve=False),
        }
    return cfg


def invert_run(base: str | Path, classes: Any, k: Any, out_dir: Path, options: dict, settings: dict) -> dict[str, Any]:
    """Invert ``classes`` of a base cddpm run into ``out_dir`` (a new run folder); return its metrics.

    ``options``: steps, lr, batch_size, vectors, seed, subset_seed. ``settings``: device, n_eval, cache_dir,
    eval (the eval settings node: reference classifier) and sample_options of the check samples.
    """
    missing = sorted({"steps", "lr", "batch_size", "vectors", "seed"} - set(options))
    if missing:
        raise GenlabError(f"the inversion settings lack {', '.join(missing)} (augment.inversion.* or genlab invert).")
    run = Run.load(base, settings.get("ckpt", "last"), settings.get("device", "auto"))
    known, classes = check_invertible(run, _plain(classes), _plain(k))
    options = dict(options)
    data, real = inversion_data(run.config, classes, k, options.pop("subset_seed", None))
    cfg = inverted_config(run, data, known, classes, options)
    with open_dict(cfg):
        cfg.paths.run_dir = str(out_dir)
    model = instantiate_model(cfg).to(run.device)
    model.load_frozen(safe_torch_load(run.checkpoint)["state_dict"])
    images = real.images.float().div(127.5).sub(1)
    labels = real.labels + model.base_classes
    generator = torch.Generator(run.device).manual_seed(int(options["seed"]))
    start, cpu_start = time.perf_counter(), time.process_time()
    steps = int(options["steps"])
    with progress.progress(steps, f"inverting {len(classes)} classes", unit="step"):
        losses = model.invert(images, labels, steps, float(options["lr"]), int(options["batch_size"]), generator)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    model.eval()
    (out_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out_dir / ".hydra" / "config.yaml")
    checkpoint = out_dir / "checkpoints" / "inversion.ckpt"
    record = OmegaConf.to_container(cfg.inversion, resolve=True)
    atomic_torch_save({"state_dict": model.state_dict(), "global_step": 0, "inversion": record}, checkpoint)
    last = checkpoint.with_name("last.ckpt")
    if not last.exists():
        os.symlink(checkpoint.name, last)
    tail = max(1, steps // 10)
    metrics: dict[str, Any] = {
        "inversion/loss_first": sum(losses[:tail]) / tail,
        "inversion/loss_last": sum(losses[-tail:]) / tail,
        "inversion/seconds": seconds,
        "inversion/cpu_seconds": cpu,
        "inversion/cpu_seconds_per_class": cpu / len(classes),
        "inversion/threads": torch.get_num_threads(),
    }
    metrics.update(check_samples(model, cfg, classes, out_dir, settings))
    metrics["status"] = "completed"
    write_json(out_dir / "metrics.json", metrics)
    return metrics


@torch.no_grad()
def check_samples(model: Any, cfg: DictConfig, classes: list[int], out_dir: Path, settings: dict) -> dict[str, float]:
    """``samples.png`` (10 per new class) and, with ``n_eval`` > 0, the class accuracy of ``n_eval`` samples per
    new class by a reference classifier of every class of the dataset."""
    n = max(10, int(settings.get("n_eval") or 0))
    options = dict(settings.get("sample_options") or {"sampler": "ddim", "steps": 25})
    labels = (torch.arange(len(classes)) + model.base_classes).repeat_interleave(n)
    generator = torch.Generator(model.device).manual_seed(0)
    with progress.progress(len(labels), f"sampling {len(labels)} images of the new classes"):
        images = model.generate(len(labels), labels=labels.to(model.device), generator=generator, **options).cpu()
    save_grid(images.view(len(classes), n, *images.shape[1:])[:, :10].flatten(0, 1), out_dir / "samples.png", 10)
    if not settings.get("n_eval"):
        return {}
    judge = all_classes_judge(cfg.data, settings["eval"], settings["cache_dir"], model.device)
    predicted = judge_classes(judge, images)
    wanted = torch.tensor(classes).repeat_interleave(n)
    hits = (predicted == wanted).float().view(len(classes), n).mean(1)
    scores = {f"class_acc/{c}": float(hits[i]) for i, c in enumerate(classes)}
    return {"class_acc": float(hits.mean()), **scores, "class_acc_n": n, "class_acc_judge": judge.identity}


def invert(cfg: DictConfig) -> dict[str, Any]:
    """The ``genlab invert`` command: a new run folder in ``paths.run_dir``."""
    options = {key: cfg[key] for key in ("steps", "lr", "batch_size", "vectors", "seed", "subset_seed")}
    for key in ("steps", "batch_size", "vectors"):
        if isinstance(options[key], bool) or not isinstance(options[key], int) or options[key] < 1:
            raise GenlabError(f"{key}={options[key]} must be an integer ≥ 1.")
    settings = {"device": cfg.device, "ckpt": cfg.ckpt, "n_eval": cfg.n_eval, "cache_dir": cfg.paths.cache_dir}
    settings["eval"] = cfg.eval
    settings["sample_options"] = _plain(cfg.sample_options)
    out_dir = Path(cfg.paths.run_dir)
    resolve_checkpoint(cfg.run, cfg.ckpt)
    pick_device(cfg.device)
    metrics = invert_run(cfg.run, cfg.classes, cfg.k, out_dir, options, settings)
    accuracies = {k: v for k, v in metrics.items() if k.startswith("class_acc") and isinstance(v, float)}
    summary = ", ".join(f"{k}={v:.3f}" for k, v in accuracies.items())
    print(f"{out_dir} ({summary or 'no class accuracy: n_eval=0'})")
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="invert")
def main(cfg: DictConfig) -> None:
    """Hydra entry point of ``genlab invert``."""
    out = Path(cfg.paths.run_dir)
    run_task(invert, cfg, cleanup=lambda: discard(out))


def rewrite_args(args: list[str]) -> list[str]:
    """``genlab invert`` takes its overrides as they are."""
    return args
