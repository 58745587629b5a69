"""The reference classifier: a genlab CNN trained on the evaluated dataset, for ``features=classifier``
and for the class metrics. Trained on first need and cached under ``paths.cache_dir``, or given as
``eval.classifier=PATH`` (a cached reference file, or the checkpoint/folder of a ``model=cnn`` run).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import TQDMProgressBar

from genlab.errors import GenlabError
from genlab.io import atomic_torch_save, safe_torch_load
from genlab.metrics.features import ClassifierFeatures, file_digest
from genlab.models.classifier import ClassifierModule
from genlab.nets.classifier import SimpleCNN
from genlab.tasks.common import load_run_config

log = logging.getLogger("genlab")

INFO_KEY = "genlab_reference_classifier"
# What a classifier must share with the evaluated data to give comparable features.
MATCH_KEYS = ("data", "image_size", "channels", "num_classes")


def data_signature(data_cfg: DictConfig) -> dict[str, Any]:
    """The dataset facts a classifier (and the features it gives) depends on."""
    return {
        "data": str(data_cfg.name),
        "image_size": int(data_cfg.image_size),
        "channels": int(data_cfg.channels),
        "num_classes": int(data_cfg.num_classes),
        "split_seed": int(data_cfg.get("split_seed", 0)),
    }


def cache_path(data_cfg: DictConfig, training: DictConfig, cache_dir: str | Path) -> Path:
    """Cache file keyed by dataset + image size + split seed (+ a hash of the training settings)."""
    sig = data_signature(data_cfg)
    settings = json.dumps(OmegaConf.to_container(training, resolve=True), sort_keys=True)
    digest = hashlib.sha256(f"{sig}{settings}".encode()).hexdigest()[:8]
    name = f"{sig['data']}_{sig['image_size']}px_{sig['channels']}ch_seed{sig['split_seed']}_{digest}.pt"
    return Path(cache_dir).expanduser() / "reference_classifiers" / name


def train_reference_classifier(data_cfg: DictConfig, training: DictConfig, path: Path, device: torch.device) -> None:
    """Train a SimpleCNN on the train split, test it, save ``{state_dict, info}`` to ``path``."""
    sig = data_signature(data_cfg)
    if sig["num_classes"] < 2:
        raise GenlabError(
            f"features=classifier needs a labelled dataset, but data={sig['data']} has no classes: "
            "use features=inception."
        )
    print(
        f"genlab: training the reference classifier for data={sig['data']} at {sig['image_size']}px "
        f"(first use; cached at {path})",
        flush=True,
    )
    datamodule = instantiate(data_cfg, augmentation=None, _recursive_=False)
    datamodule.batch_size = int(training.batch_size)
    net = SimpleCNN(sig["channels"], sig["num_classes"], sig["image_size"], widths=list(training.widths), dropout=0.1)
    module = ClassifierModule(
        net, partial(torch.optim.Adam, lr=float(training.lr), weight_decay=1e-4), sig["num_classes"]
    )
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as scratch:
        torch.manual_seed(sig["split_seed"])
        trainer = Trainer(
            accelerator=accelerator,
            devices=1,
            max_epochs=int(training.max_epochs),
            limit_train_batches=training.get("limit_train_batches") or 1.0,
            limit_val_batches=0,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            callbacks=[TQDMProgressBar(refresh_rate=10)],
            default_root_dir=scratch,
        )
        trainer.fit(module, datamodule=datamodule)
        result = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    test_acc = float(result["test/acc"])
    info = {**sig, "widths": list(training.widths), "test_acc": test_acc}
    atomic_torch_save({"state_dict": net.cpu().state_dict(), INFO_KEY: info}, path)
    print(f"genlab: reference classifier test accuracy {test_acc:.4f} ({path})", flush=True)


def _from_reference_file(checkpoint: dict, path: Path) -> tuple[SimpleCNN, dict]:
    info = dict(checkpoint[INFO_KEY])
    net = SimpleCNN(info["channels"], info["num_classes"], info["image_size"], widths=info["widths"])
    net.load_state_dict(checkpoint["state_dict"])
    return net, info


def _from_cnn_run(checkpoint: dict, path: Path) -> tuple[SimpleCNN, dict]:
    """A ``model=cnn`` run's Lightning checkpoint: the run's config (two folders up) describes it."""
    run_dir = path.parent.parent
    if not (run_dir / ".hydra" / "config.yaml").is_file():
        raise GenlabError(
            f"eval.classifier={path} is neither a reference classifier file nor inside a genlab run folder "
            "(<run>/checkpoints/*.ckpt): pass the checkpoint of a model=cnn run, or omit eval.classifier."
        )
    run_cfg = load_run_config(run_dir)
    net_cfg = run_cfg.model.get("net")
    if net_cfg is None or not str(net_cfg.get("_target_", "")).endswith("SimpleCNN"):
        raise GenlabError(
            f"eval.classifier={path} belongs to a model={run_cfg.model.name} run, not a classifier: "
            "pass the checkpoint of a model=cnn run."
        )
    net = instantiate(OmegaConf.to_container(net_cfg, resolve=True))
    state = {k[len("net.") :]: v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(state)
    return net, data_signature(run_cfg.data)


def load_classifier(path: str | Path) -> ClassifierFeatures:
    """A classifier for features: a reference file, a ``model=cnn`` checkpoint, or a cnn run folder."""
    path = Path(str(path)).expanduser()
    if path.is_dir():
        candidates = [path / "checkpoints" / "best.ckpt", path / "checkpoints" / "last.ckpt"]
        path = next((c for c in candidates if c.is_file()), candidates[-1])
    if not path.is_file():
        raise GenlabError(f"eval.classifier={path} does not exist: pass a classifier checkpoint or omit it.")
    checkpoint = safe_torch_load(path)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise GenlabError(f"eval.classifier={path} holds no 'state_dict': it is not a genlab classifier checkpoint.")
    loader = _from_reference_file if INFO_KEY in checkpoint else _from_cnn_run
    try:
        net, info = loader(checkpoint, path)
    except RuntimeError as err:
        raise GenlabError(f"eval.classifier={path} does not match its config ({str(err).splitlines()[0]}).") from None
    return ClassifierFeatures(net, f"classifier:{file_digest(path)}", info)


def check_matches(classifier: ClassifierFeatures, data_cfg: DictConfig, source: str) -> None:
    """Refuse a classifier trained on another dataset, image size, channel count or class count."""
    wanted = data_signature(data_cfg)
    got = classifier.info
    diffs = [f"{k}={got.get(k)} (needed {wanted[k]})" for k in MATCH_KEYS if got.get(k) != wanted[k]]
    if diffs:
        raise GenlabError(
            f"{source} was trained for another dataset or image size: {', '.join(diffs)}. "
            f"Pass a classifier trained on data={wanted['data']} at image_size={wanted['image_size']}, "
            "or omit eval.classifier to train and cache the reference classifier."
        )


def reference_classifier(
    data_cfg: DictConfig, settings: DictConfig, cache_dir: str | Path, device: torch.device
) -> ClassifierFeatures:
    """``eval.classifier`` when given, else the cached reference classifier (trained on first need)."""
    if settings.get("classifier"):
        classifier = load_classifier(settings.classifier)
        check_matches(classifier, data_cfg, f"eval.classifier={settings.classifier}")
    else:
        path = cache_path(data_cfg, settings.reference_classifier, cache_dir)
        if not path.is_file():
            train_reference_classifier(data_cfg, settings.reference_classifier, path, device)
        classifier = load_classifier(path)
        check_matches(classifier, data_cfg, f"the cached reference classifier {path}")
    return classifier.to(device)
