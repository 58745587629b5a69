"""Building the synthetic pool of ``augment=generative|sdedit|inpaint`` before a classifier trains.

The pool is generated once (with a progress bar), written to ``<run>/synthetic/pool.pt`` with a
preview ``<run>/synthetic.png``, and shared through ``paths.cache_dir`` by every run that asks for
the same pool: its key is the source checkpoint's hash, the pool's options and seed, and the
fingerprint of the real training images. :func:`prepare_synthetic` enforces the fairness rules.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torchvision.utils import save_image

from genlab import progress
from genlab.api import Run
from genlab.augment.fewshot import DAFusionAugmentation
from genlab.augment.synthetic import SyntheticAugmentation
from genlab.build import compose_config, load_run_config
from genlab.capabilities import Classifies
from genlab.data.datasets import TensorSplit
from genlab.errors import GenlabError
from genlab.io import atomic_torch_save, file_lock, safe_torch_load
from genlab.metrics.features import file_digest
from genlab.runs import check_run_dir
from genlab.tasks.heldout import (
    auto_inversion,
    base_source,
    check_heldout_fairness,
    class_agreement,
    generator_data,
    is_heldout,
)

log = logging.getLogger("genlab")

# Data settings that decide how batches are served, not which images exist: they may differ
# between a generator run and the classifier that uses it.
BATCHING_KEYS = frozenset({"batch_size", "num_workers", "epoch_size", "fid_features", "download", "hflip_p"})
TrainFn = Callable[[DictConfig], dict[str, Any]]
# What the generator's metrics.json contributes to the classifier's (prefixed ``generator/``).
GENERATOR_SCORES = ("fid", "class_acc", "precision", "recall")


def _data_identity(data_cfg: DictConfig) -> dict[str, Any]:
    """The data settings that decide which real images exist (unresolved, batching keys dropped)."""
    container = OmegaConf.to_container(data_cfg, resolve=False)
    return {k: v for k, v in container.items() if k not in BATCHING_KEYS}


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def check_fairness(source_data: DictConfig, data: DictConfig, source: Path) -> None:
    """The generator must have been trained on exactly the classifier's real training images."""
    theirs, ours = _data_identity(source_data), _data_identity(data)
    if theirs == ours:
        return
    if theirs.get("name") != ours.get("name"):
        what = f"was trained on data={theirs.get('name')}, but this classifier uses data={ours.get('name')}"
    else:
        differing = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        what = "was trained on other real images: " + ", ".join(
            f"data.{k}={theirs.get(k)} there vs {ours.get(k)} here" for k in differing
        )
    raise GenlabError(
        f"augment.source={source} {what}. Fairness rule: the generator must see exactly the classifier's real "
        "training images (same dataset, image size, channels, split and data.train_per_class) and never its "
        "val/test splits. Train the generator with the same data overrides, or use augment.source=auto."
    )


def auto_generator(cfg: DictConfig, augmentation: SyntheticAugmentation, train: TrainFn) -> Path:
    """``augment.source=auto``: the generator run trained (by ``train``) on this classifier's own images (in a
    held-out-class study: on every training image of the seen classes, :func:`~genlab.tasks.heldout.generator_data`).

    It lives in ``<output_root>/generators/`` under a name that encodes the data config and
    generator settings, so every arm, seed and sweep job with the same real data shares it.
    """
    settings = augmentation.generator
    model_name = settings.get("model", "cddpm")
    seed = int(settings.get("seed", 0))
    overrides = [str(o) for o in settings.get("overrides", [])]
    data = generator_data(cfg.data) if is_heldout(cfg.data) else cfg.data
    identity = {"data": _data_identity(data), "model": model_name, "seed": seed, "overrides": overrides}
    per_class = data.get("train_per_class")
    seen = "_seen" if is_heldout(cfg.data) else ""
    name = f"{model_name}_{cfg.data.name}{cfg.data.image_size}{seen}_n{per_class or 'all'}_{_digest(identity)}"
    run_dir = (Path(cfg.paths.output_root) / "generators" / name).resolve()
    with file_lock(run_dir.with_suffix(".lock")):
        metrics_file = run_dir / "metrics.json"
        if metrics_file.is_file() and json.loads(metrics_file.read_text()).get("status") == "completed":
            log.info("augment.source=auto: using the generator trained before in %s", run_dir)
            return run_dir
        gen_cfg = compose_config("train", [f"model={model_name}", "augment=none", f"seed={seed}", *overrides])
        OmegaConf.set_struct(gen_cfg, False)
        gen_cfg.data = OmegaConf.create(OmegaConf.to_container(data, resolve=False))
        gen_cfg.data.train_per_class = per_class
        gen_cfg.paths = OmegaConf.create(OmegaConf.to_container(cfg.paths, resolve=True))
        gen_cfg.paths.run_dir = str(run_dir)
        gen_cfg.test = False
        gen_cfg.trainer.limit_val_batches = 0
        gen_cfg.model.monitor.metric = None
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(gen_cfg, run_dir / ".hydra" / "config.yaml")
        log.info(
            "augment.source=auto: training %s on %s in %s",
            model_name,
            "the seen classes" if seen else "the classifier's training images",
            run_dir,
        )
        metrics = train(gen_cfg)
        if metrics.get("status") != "completed":
            raise GenlabError(f"augment.source=auto: the generator run {run_dir} ended '{metrics.get('status')}'.")
    return run_dir


def _load_pool(path: Path, key: dict[str, Any]) -> TensorSplit | None:
    if not path.is_file():
        return None
    try:
        stored = safe_torch_load(path)
    except GenlabError:
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    return TensorSplit(stored["images"], stored["labels"])


def _source_scores(source: Path) -> dict[str, float]:
    metrics_file = source / "metrics.json"
    if not metrics_file.is_file():
        return {}
    metrics = json.loads(metrics_file.read_text())
    return {f"generator/{k}": metrics[k] for k in GENERATOR_SCORES if isinstance(metrics.get(k), int | float)}


def build_pool(augmentation: SyntheticAugmentation, source: Path, real: TensorSplit, num_classes: int) -> TensorSplit:
    """Load the source run and generate the pool, with a progress bar (runs under the pool's file lock)."""
    run = Run.load(source, "last", augmentation.device)
    augmentation.check_source(run.model, run.name, source)
    generator = torch.Generator(run.device).manual_seed(augmentation.seed)
    total = augmentation.size(real, num_classes)
    with progress.progress(total, f"augment={augmentation.name}: generating {total} images"), torch.no_grad():
        pool = augmentation.synthesize(run.model, real, generator)
    log.info("augment=%s: %d synthetic images from %s", augmentation.name, len(pool.labels), source)
    return pool


def prepare_synthetic(cfg: DictConfig, datamodule: Any, model: Any, train: TrainFn) -> dict[str, float]:
    """Build or load the synthetic pool of ``cfg.augment`` and hand it to the datamodule; ``train``
    trains the generator of ``augment.source=auto``.

    Returns the generator's own scores (FID, class accuracy) for the run's metrics.json.
    """
    augmentation = datamodule.augmentation
    if not isinstance(augmentation, SyntheticAugmentation):
        return {}
    if not isinstance(model, Classifies):
        raise GenlabError(
            f"augment={augmentation.name} adds labelled synthetic training images for a classifier (model=cnn); "
            f"it does not apply to model={cfg.model.name}."
        )
    real = datamodule.real_train_split()
    if augmentation.source == "auto" and isinstance(augmentation, DAFusionAugmentation):
        base = base_source(cfg, augmentation, lambda: auto_generator(cfg, augmentation, train))
        source = auto_inversion(cfg, augmentation, base, _data_identity)
    elif augmentation.source == "auto":
        source = auto_generator(cfg, augmentation, train)
    else:
        source = check_run_dir(augmentation.source)
    source = Path(source).resolve()
    if is_heldout(cfg.data):
        check_heldout_fairness(load_run_config(source), cfg.data, source, augmentation, _data_identity)
    else:
        check_fairness(load_run_config(source).data, cfg.data, source)
    key = {
        "kind": augmentation.kind,
        "source": file_digest(source / "checkpoints" / "last.ckpt"),
        "options": augmentation.options(),
        "seed": augmentation.seed,
        "real": datamodule.fingerprint("train"),
    }
    run_file = Path(cfg.paths.run_dir) / "synthetic" / "pool.pt"
    shared_file = Path(cfg.paths.cache_dir) / "synthetic" / f"{augmentation.kind}_{_digest(key)}.pt"
    pool = _load_pool(run_file, key)
    scores = {}
    if pool is None:
        with file_lock(shared_file.with_suffix(".lock")):
            pool = _load_pool(shared_file, key)
            if pool is None:
                started = time.process_time()
                pool = build_pool(augmentation, source, real, datamodule.num_classes)
                scores["synthetic/build_cpu_seconds"] = time.process_time() - started
                atomic_torch_save({"key": key, "images": pool.images, "labels": pool.labels}, shared_file)
    if not run_file.is_file():
        atomic_torch_save({"key": key, "images": pool.images, "labels": pool.labels}, run_file)
        write_preview(pool, Path(cfg.paths.run_dir) / "synthetic.png", datamodule.num_classes)
    datamodule.add_synthetic(pool, augmentation.ratio)
    if is_heldout(cfg.data):
        scores["synthetic/class_agreement"] = class_agreement(cfg, datamodule.class_ids, pool, augmentation.device)
    return {**_source_scores(source), "synthetic/images": float(len(pool.labels)), **scores}


def write_preview(pool: TensorSplit, path: Path, num_classes: int, per_class: int = 10) -> None:
    """``synthetic.png``: one row per class, ``per_class`` synthetic images each."""
    rows = []
    for label in range(num_classes):
        members = (pool.labels == label).nonzero().flatten()[:per_class]
        picked = pool.images[members].float().div(255)
        if len(picked) < per_class:
            pad = torch.zeros(per_class - len(picked), *pool.images.shape[1:])
            picked = torch.cat([picked, pad])
        rows.append(picked)
    save_image(torch.cat(rows), path, nrow=per_class, padding=2)
    log.info("preview of the synthetic pool: %s", path)
