"""Synthetic pools for classes the generator never saw (``data.heldout_classes``): the fairness rule of
held-out studies, the generators and inversions that ``augment.source=auto`` makes for them, and how
often a pool's images are judged to be of their label's class.

A held-out study trains its generators on all training images of the *seen* classes
(``data.classes=seen``) and its classifier on ``data.train_per_class`` images of the held-out classes
(``data.classes=heldout``). The rule: the generator must come from the same dataset, split and image
size and must never have seen a class the classifier learns; an inverted run (``genlab invert``) must in
addition have learned its classes from exactly the classifier's real training images.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from genlab.augment.fewshot import DAFusionAugmentation
from genlab.augment.synthetic import SyntheticAugmentation
from genlab.build import pick_device
from genlab.data.classes import config_class_ids
from genlab.data.datasets import TensorSplit
from genlab.errors import GenlabError
from genlab.io import file_lock
from genlab.metrics.features import file_digest
from genlab.runs import check_run_dir
from genlab.tasks.invert import all_classes_judge, data_with, dataset_classes, invert_run, judge_classes

log = logging.getLogger("genlab")

# Data settings that choose classes or a subset of the dataset's training images.
CLASS_KEYS = frozenset({"classes", "heldout_classes", "num_classes", "train_per_class", "subset_seed"})
Identity = Callable[[DictConfig], dict[str, Any]]


def is_heldout(data_cfg: DictConfig) -> bool:
    """True for the classifier of a held-out-class study."""
    return OmegaConf.select(data_cfg, "heldout_classes", default=None) is not None


def _subset(data_cfg: DictConfig | dict) -> tuple[list[int], Any, Any]:
    """(sorted dataset classes kept, train_per_class, effective subset seed) of a data node."""
    node = OmegaConf.create(data_cfg) if isinstance(data_cfg, dict) else data_cfg
    seed = OmegaConf.select(node, "subset_seed", default=None)
    seed = OmegaConf.select(node, "split_seed", default=0) if seed is None else seed
    per_class = OmegaConf.select(node, "train_per_class", default=None)
    return sorted(config_class_ids(OmegaConf.to_container(node, resolve=True))), per_class, seed


def generator_data(data_cfg: DictConfig) -> DictConfig:
    """The data a held-out study's generators train on: every training image of the seen classes."""
    held = list(OmegaConf.select(data_cfg, "heldout_classes"))
    total = dataset_classes(data_cfg)
    return data_with(data_cfg, classes="seen", num_classes=total - len(held), train_per_class=None, subset_seed=None)


def check_heldout_fairness(
    source_cfg: DictConfig, data: DictConfig, source: Path, augmentation: SyntheticAugmentation, identity: Identity
) -> None:
    """Refuse a source that saw a class of this held-out study, another dataset, or other few-shot images."""
    held = list(OmegaConf.select(data, "heldout_classes"))
    if augmentation.needs_source_classes():
        raise GenlabError(
            f"augment={augmentation.name} labels or guides images with classes the generator knows, but this is a "
            f"held-out-class study (data.heldout_classes={held}): its generators never saw the classifier's classes. "
            "Use augment=dagan, augment=da_fusion, or augment=sdedit with augment.guide=false (null-class guidance)."
        )

    def dataset(node: Any) -> dict[str, Any]:
        return {k: v for k, v in identity(OmegaConf.create(node)).items() if k not in CLASS_KEYS}

    if dataset(source_cfg.data) != dataset(data):
        theirs, ours = dataset(source_cfg.data), dataset(data)
        key = next(k for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k))
        raise GenlabError(
            f"augment.source={source} was trained on other data: data.{key}={theirs.get(key)} there vs "
            f"{ours.get(key)} here. A held-out study's generators use the classifier's dataset, split and size."
        )
    seen = config_class_ids(OmegaConf.to_container(source_cfg.data, resolve=True))
    learned = set(_subset(data)[0]) | set(held)
    overlap = sorted(learned & set(seen))
    if overlap:
        raise GenlabError(
            f"augment.source={source} was trained on class {overlap[0]}, which this study holds out "
            f"(data.heldout_classes={held}; the generator saw classes {seen}). Fairness rule of held-out studies: "
            "the generator never sees the classes the classifier learns from a few images. Train it with "
            f"data.heldout_classes={held} data.classes=seen data.num_classes=<number of seen classes>."
        )
    inversion = source_cfg.get("inversion")
    if inversion is not None:
        theirs, ours = _subset(OmegaConf.to_container(inversion.data, resolve=True)), _subset(data)
        if theirs != ours or dataset(inversion.data) != dataset(data):
            raise GenlabError(
                f"augment.source={source} learned its classes from other images (classes {theirs[0]}, k={theirs[1]}, "
                f"subset seed {theirs[2]}) than this classifier's (classes {ours[0]}, data.train_per_class={ours[1]}, "
                f"subset seed {ours[2]}): an inversion must see exactly the classifier's real training images. "
                "Invert with the same classes, k and subset_seed, or use augment.source=auto."
            )


def auto_inversion(cfg: DictConfig, augmentation: DAFusionAugmentation, base: Path, identity: Identity) -> Path:
    """``augment=da_fusion augment.source=auto``: ``base`` inverted on this classifier's own images (once per
    subset), in ``<output_root>/generators/``."""
    classes, k, subset_seed = _subset(cfg.data)
    if k is None:
        raise GenlabError(
            "augment=da_fusion with augment.source=auto inverts the classifier's few images: set data.train_per_class."
        )
    settings = dict(augmentation.inversion)
    n_eval = int(settings.pop("n_eval", 0) or 0)
    options = settings
    key = {
        "base": file_digest(base / "checkpoints" / "last.ckpt"),
        "data": {k2: v for k2, v in identity(cfg.data).items() if k2 not in CLASS_KEYS},
        "classes": augmentation.class_ids,
        "subset": [classes, k, subset_seed],
        "options": options,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:10]
    name = f"inversion_{cfg.data.name}{cfg.data.image_size}_k{k}_s{subset_seed}_{digest}"
    run_dir = (Path(cfg.paths.output_root) / "generators" / name).resolve()
    with file_lock(run_dir.with_suffix(".lock")):
        metrics_file = run_dir / "metrics.json"
        if metrics_file.is_file() and json.loads(metrics_file.read_text()).get("status") == "completed":
            log.info("augment.source=auto: using the inversion made before in %s", run_dir)
            return run_dir
        log.info("augment.source=auto: inverting %s for classes %s (k=%s) in %s", base, classes, k, run_dir)
        settings = {"device": augmentation.device, "n_eval": n_eval, "cache_dir": cfg.paths.cache_dir, "eval": cfg.eval}
        invert_run(base, list(augmentation.class_ids), k, run_dir, {**options, "subset_seed": subset_seed}, settings)
    return run_dir


def base_source(cfg: DictConfig, augmentation: DAFusionAugmentation, auto: Callable[[], Path]) -> Path:
    """The cddpm run ``augment=da_fusion`` inverts: ``augment.base``, or the one ``auto`` trains."""
    return auto() if augmentation.base == "auto" else check_run_dir(augmentation.base, "augment.base").resolve()


def class_agreement(cfg: DictConfig, class_ids: list[int], pool: TensorSplit, device: Any) -> float:
    """Share of pool images that the reference classifier of *all* classes assigns to their label's class."""
    judge = all_classes_judge(cfg.data, cfg.eval, cfg.paths.cache_dir, pick_device(device))
    predicted = judge_classes(judge, pool.images.float().div(127.5).sub(1))
    wanted = torch.as_tensor(class_ids)[pool.labels]
    return float((predicted == wanted).float().mean())
