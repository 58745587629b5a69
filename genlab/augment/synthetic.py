"""Generative data augmentation: labelled images made by a trained generator, mixed into classifier batches.

Two kinds, each also carrying the classical per-sample transforms of :class:`Augmentation`:

- :class:`GenerativeAugmentation` (``augment=generative``): class-conditional samples drawn from
  scratch from a cgan or conditional DDPM run (DAGAN-style);
- :class:`SDEditAugmentation` (``augment=sdedit``): SDEdit variations of the classifier's own real
  training images at several strengths from a DDPM run (Real Guidance / DA-Fusion style).

The pool is generated once before training, written to ``<run>/synthetic/pool.pt`` with a preview
``<run>/synthetic.png``, and shared through ``paths.cache_dir`` by every run that asks for the same
pool. :func:`prepare_synthetic` enforces the fairness rules (see README).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torchvision.utils import save_image
from tqdm.auto import tqdm

from genlab.augment.pipeline import Augmentation
from genlab.data.base import TensorSplit
from genlab.errors import GenlabError
from genlab.io import atomic_torch_save, safe_torch_load
from genlab.metrics.features import file_digest, to_uint8, uint8_to_model_range
from genlab.runs import check_run_dir

log = logging.getLogger("genlab")

# Data settings that decide how batches are served, not which images exist: they may differ
# between a generator run and the classifier that uses it.
BATCHING_KEYS = frozenset({"batch_size", "num_workers", "epoch_size", "fid_features", "download", "hflip_p"})
# Sampler settings of diffusion sources unless augment.sampler/steps say otherwise: DDIM is ~40×
# faster than DDPM-1000 at 25 steps, with recognisable digits.
DIFFUSION_DEFAULTS = {"sampler": "ddim", "steps": 25}
# What the generator's metrics.json contributes to the classifier's (prefixed ``generator/``).
GENERATOR_SCORES = ("fid", "class_acc", "precision", "recall")


class SyntheticAugmentation(Augmentation):
    """Classical transforms plus a pool of labelled synthetic images mixed into every training batch.

    Args:
        name, transforms, batch_transforms, on_device: as :class:`Augmentation` (the classical part).
        source: folder of the generator's train run, or ``auto`` to train ``generator`` first on
            the classifier's own real training images (same ``data`` config, val/test unused).
        ratio: share of each training batch drawn from the synthetic pool, in [0, 1).
        generator: ``source=auto`` settings: ``model`` (a model config name), ``seed`` and
            ``overrides`` (extra train overrides, e.g. ``trainer.max_steps=800``).
        seed: seed of the pool's generation (the pool is the same for every classifier seed).
        batch_size: images generated at once.
        device: where to generate: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    """

    kind: ClassVar[str] = "synthetic"

    def __init__(
        self,
        name: str,
        source: str = "auto",
        ratio: float = 0.5,
        generator: dict[str, Any] | None = None,
        seed: int = 0,
        batch_size: int = 256,
        device: str = "auto",
        transforms: Sequence[Any] = (),
        batch_transforms: Sequence[Any] = (),
        on_device: bool = False,
    ) -> None:
        super().__init__(name=name, transforms=transforms, batch_transforms=batch_transforms, on_device=on_device)
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio < 1:
            raise GenlabError(
                f"augment.ratio={ratio} must be in [0, 1): the share of each training batch that is synthetic "
                "(0.5 = half real, half generated); 1 would train on generated images only."
            )
        if batch_size < 1:
            raise GenlabError(f"augment.batch_size={batch_size} must be at least 1.")
        self.source = str(source)
        self.ratio = float(ratio)
        self.generator = dict(generator or {})
        self.seed = int(seed)
        self.batch_size = int(batch_size)
        self.device = device

    def check_source(self, model: Any, run_cfg: DictConfig, source: Path) -> None:
        """Refuse a source model that cannot make this kind of pool (message names augment.source)."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """Everything besides the source checkpoint that decides the pool's content."""
        raise NotImplementedError

    def synthesize(self, model: Any, real: TensorSplit, generator: torch.Generator) -> TensorSplit:
        """Generate the pool (uint8 images, labels) with the loaded source ``model``."""
        raise NotImplementedError

    def _chunks(self, total: int, description: str) -> Iterator[tuple[int, int]]:
        """(start, stop) of each generation batch, with a progress bar."""
        starts = range(0, total, self.batch_size)
        for start in tqdm(starts, desc=description, unit="batch", leave=False):
            yield start, min(total, start + self.batch_size)


class GenerativeAugmentation(SyntheticAugmentation):
    """``augment=generative``: ``n_per_class`` class-conditional samples per class from scratch.

    Sampler options (``sampler``, ``steps``, ``eta``, ``guidance`` for diffusion, ``truncation``
    for GANs) are passed to the source model's ``generate``; ones it does not know are refused.
    Diffusion sources default to DDIM with 25 steps.
    """

    kind: ClassVar[str] = "generative"

    def __init__(
        self,
        name: str = "generative",
        n_per_class: int = 200,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        guidance: float | None = None,
        truncation: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or n_per_class < 1:
            raise GenlabError(f"augment.n_per_class={n_per_class} must be an integer ≥ 1.")
        self.n_per_class = n_per_class
        self.sample_options = {
            key: value
            for key, value in {
                "sampler": sampler,
                "steps": steps,
                "eta": eta,
                "guidance": guidance,
                "truncation": truncation,
            }.items()
            if value is not None
        }

    def check_source(self, model: Any, run_cfg: DictConfig, source: Path) -> None:
        from genlab.models.base import GenerativeModule

        if not isinstance(model, GenerativeModule) or not model.conditional:
            raise GenlabError(
                f"augment.source={source} is a {run_cfg.model.name} run, which cannot make labelled images: "
                "augment=generative needs a class-conditional generator (model=cgan or model=cddpm), because "
                "each synthetic image must carry the label it was generated for."
            )
        unknown = sorted(set(self.sample_options) - set(model.sample_options))
        if unknown:
            accepted = sorted(set(model.sample_options) & {"sampler", "steps", "eta", "guidance", "truncation"})
            raise GenlabError(
                f"augment.{unknown[0]} does not apply to the source model {run_cfg.model.name}: it accepts "
                f"{', '.join(accepted) or 'no sampler options'}."
            )

    def options(self) -> dict[str, Any]:
        return {"n_per_class": self.n_per_class, "defaults": DIFFUSION_DEFAULTS, **self.sample_options}

    def synthesize(self, model: Any, real: TensorSplit, generator: torch.Generator) -> TensorSplit:
        labels = torch.arange(model.num_classes).repeat_interleave(self.n_per_class)
        defaults = DIFFUSION_DEFAULTS if "sampler" in model.sample_options else {}
        options = {**defaults, **self.sample_options}
        images = []
        for start, stop in self._chunks(len(labels), f"generating {len(labels)} images"):
            batch = labels[start:stop].to(model.device)
            images.append(to_uint8(model.generate(len(batch), labels=batch, generator=generator, **options)).cpu())
        return TensorSplit(torch.cat(images), labels)


class SDEditAugmentation(SyntheticAugmentation):
    """``augment=sdedit``: SDEdit variations of the real training images at several strengths.

    Each real image gets ``variations_per_image`` variations at every strength of ``strengths``;
    each variation carries its source image's label (and, on a conditional DDPM, is guided by it).
    """

    kind: ClassVar[str] = "sdedit"

    def __init__(
        self,
        name: str = "sdedit",
        strengths: Sequence[float] = (0.3, 0.5, 0.7),
        variations_per_image: int = 1,
        sampler: str | None = "ddim",
        steps: int | None = None,
        eta: float | None = None,
        guidance: float | None = None,
        **kwargs: Any,
    ) -> None:
        from genlab.models.ddpm import strength_list

        super().__init__(name=name, **kwargs)
        try:
            self.strengths = strength_list(list(strengths) if not isinstance(strengths, int | float) else strengths)
        except GenlabError as err:
            raise GenlabError(f"augment.strengths: {err}") from None
        if (
            isinstance(variations_per_image, bool)
            or not isinstance(variations_per_image, int)
            or variations_per_image < 1
        ):
            raise GenlabError(f"augment.variations_per_image={variations_per_image} must be an integer ≥ 1.")
        self.variations_per_image = variations_per_image
        self.sample_options = {
            key: value
            for key, value in {"sampler": sampler, "steps": steps, "eta": eta, "guidance": guidance}.items()
            if value is not None
        }

    def check_source(self, model: Any, run_cfg: DictConfig, source: Path) -> None:
        if not hasattr(model, "sdedit"):
            raise GenlabError(
                f"augment.source={source} is a {run_cfg.model.name} run: augment=sdedit needs a diffusion run "
                "(model=ddpm or model=cddpm), whose denoiser turns noised real images back into images."
            )

    def options(self) -> dict[str, Any]:
        return {"strengths": self.strengths, "variations_per_image": self.variations_per_image, **self.sample_options}

    def synthesize(self, model: Any, real: TensorSplit, generator: torch.Generator) -> TensorSplit:
        images = real.images.repeat_interleave(self.variations_per_image, 0)
        labels = real.labels.repeat_interleave(self.variations_per_image, 0)
        guide = model.conditional
        pools = []
        for strength in self.strengths:
            for start, stop in self._chunks(len(images), f"SDEdit strength {strength:g}: {len(images)} images"):
                x0 = uint8_to_model_range(images[start:stop])
                cond = labels[start:stop] if guide else None
                varied = model.sdedit(x0, strength, cond, generator, **self.sample_options)
                pools.append(to_uint8(varied).cpu())
        return TensorSplit(torch.cat(pools), labels.repeat(len(self.strengths)))


# ------------------------------------------------------------------------------ preparation


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


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive file lock, so that parallel sweep jobs train one shared generator once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _compose_train(overrides: list[str]) -> DictConfig:
    """The ``train`` config with ``overrides``, inside or outside a running Hydra app."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from genlab.tasks.common import CONFIG_DIR

    if GlobalHydra.instance().is_initialized():
        return compose(config_name="train", overrides=overrides)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def auto_generator(cfg: DictConfig, augmentation: SyntheticAugmentation) -> Path:
    """``augment.source=auto``: the generator run trained on this classifier's own training images.

    It lives in ``<output_root>/generators/`` under a name that encodes the data config and
    generator settings, so every arm, seed and sweep job with the same real data shares it.
    """
    settings = augmentation.generator
    model_name = settings.get("model", "cddpm")
    seed = int(settings.get("seed", 0))
    overrides = [str(o) for o in settings.get("overrides", [])]
    identity = {"data": _data_identity(cfg.data), "model": model_name, "seed": seed, "overrides": overrides}
    per_class = cfg.data.get("train_per_class")
    name = f"{model_name}_{cfg.data.name}{cfg.data.image_size}_n{per_class or 'all'}_{_digest(identity)}"
    run_dir = (Path(cfg.paths.output_root) / "generators" / name).resolve()
    with _locked(run_dir.with_suffix(".lock")):
        metrics_file = run_dir / "metrics.json"
        if metrics_file.is_file() and json.loads(metrics_file.read_text()).get("status") == "completed":
            log.info("augment.source=auto: using the generator trained before in %s", run_dir)
            return run_dir
        gen_cfg = _compose_train([f"model={model_name}", "augment=none", f"seed={seed}", *overrides])
        OmegaConf.set_struct(gen_cfg, False)
        gen_cfg.data = OmegaConf.create(OmegaConf.to_container(cfg.data, resolve=False))
        gen_cfg.data.train_per_class = per_class
        gen_cfg.paths = OmegaConf.create(OmegaConf.to_container(cfg.paths, resolve=True))
        gen_cfg.paths.run_dir = str(run_dir)
        gen_cfg.test = False
        gen_cfg.trainer.limit_val_batches = 0
        gen_cfg.model.monitor.metric = None
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(gen_cfg, run_dir / ".hydra" / "config.yaml")
        log.info("augment.source=auto: training %s on the classifier's training images in %s", model_name, run_dir)
        from genlab.tasks.train import train

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


def prepare_synthetic(cfg: DictConfig, datamodule: Any) -> dict[str, float]:
    """Build or load the synthetic pool of ``cfg.augment`` and hand it to the datamodule.

    Returns the generator's own scores (FID, class accuracy) for the run's metrics.json.
    """
    from genlab.models.classifier import ClassifierModule
    from genlab.tasks.common import load_run_config, resolve_checkpoint

    augmentation = datamodule.augmentation
    if not isinstance(augmentation, SyntheticAugmentation):
        return {}
    model_class = get_class(cfg.model._target_)
    if not issubclass(model_class, ClassifierModule):
        raise GenlabError(
            f"augment={augmentation.name} adds labelled synthetic training images for a classifier (model=cnn); "
            f"it does not apply to model={cfg.model.name}."
        )
    real = datamodule.real_train_split()
    source = auto_generator(cfg, augmentation) if augmentation.source == "auto" else check_run_dir(augmentation.source)
    source = Path(source).resolve()
    run_cfg = load_run_config(source)
    check_fairness(run_cfg.data, cfg.data, source)
    checkpoint = resolve_checkpoint(source, "last")
    key = {
        "kind": augmentation.kind,
        "source": file_digest(checkpoint),
        "options": augmentation.options(),
        "seed": augmentation.seed,
        "real": hashlib.sha256(real.images.numpy().tobytes()).hexdigest()[:16],
    }
    run_file = Path(cfg.paths.run_dir) / "synthetic" / "pool.pt"
    shared_file = Path(cfg.paths.cache_dir) / "synthetic" / f"{augmentation.kind}_{_digest(key)}.pt"
    pool = _load_pool(run_file, key)
    if pool is None:
        with _locked(shared_file.with_suffix(".lock")):
            pool = _load_pool(shared_file, key)
            if pool is None:
                pool = _build_pool(augmentation, run_cfg, checkpoint, source, real)
                atomic_torch_save({"key": key, "images": pool.images, "labels": pool.labels}, shared_file)
    if not run_file.is_file():
        atomic_torch_save({"key": key, "images": pool.images, "labels": pool.labels}, run_file)
        write_preview(pool, Path(cfg.paths.run_dir) / "synthetic.png", datamodule.num_classes)
    datamodule.add_synthetic(pool, augmentation.ratio)
    return {**_source_scores(source), "synthetic/images": float(len(pool.labels))}


def _build_pool(
    augmentation: SyntheticAugmentation, run_cfg: DictConfig, checkpoint: Path, source: Path, real: TensorSplit
) -> TensorSplit:
    """Load the source model and generate the pool (runs under the pool's file lock)."""
    from genlab.tasks.common import load_trained_model, pick_device

    device = pick_device(augmentation.device)
    model = load_trained_model(run_cfg, checkpoint, device)
    augmentation.check_source(model, run_cfg, source)
    generator = torch.Generator(device).manual_seed(augmentation.seed)
    pool = augmentation.synthesize(model, real, generator)
    log.info("augment=%s: %d synthetic images from %s", augmentation.name, len(pool.labels), source)
    return pool


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


def synthetic_share(batch_size: int, ratio: float) -> int:
    """How many images of a training batch of ``batch_size`` are synthetic at ``ratio``."""
    return min(batch_size - 1, math.floor(batch_size * ratio + 0.5)) if ratio > 0 else 0
