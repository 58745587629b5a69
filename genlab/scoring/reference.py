"""The reference classifier: a genlab CNN trained on the evaluated dataset on first need, cached under
``paths.cache_dir``, or given as ``eval.classifier=PATH`` (a cached reference file, or the checkpoint
or folder of a ``model=cnn`` run).

It is trained on the dataset's full training split (a few-shot ``data.train_per_class`` subset does
not shrink it: it only judges) and keyed by that split's fingerprint, so a classifier of one image
folder never serves another folder of the same shape.
"""

from __future__ import annotations

import logging
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning import LightningDataModule, Trainer
from pytorch_lightning.callbacks import TQDMProgressBar

from genlab.build import load_run_config, load_weights
from genlab.errors import GenlabError
from genlab.io import atomic_torch_save, file_lock, safe_torch_load
from genlab.metrics.features import ClassifierFeatures, file_digest
from genlab.metrics.reference import INFO_KEY, cache_path, check_matches, load_reference_file, reference_signature
from genlab.models.classifier import ClassifierModule
from genlab.nets.classifier import SimpleCNN

log = logging.getLogger("genlab")

# Data settings that choose a subset or the batching of the training split, not the dataset.
SUBSET_KEYS = ("train_per_class", "epoch_size", "on_device")


def reference_datamodule(data_cfg: DictConfig) -> LightningDataModule:
    """The dataset of ``data_cfg`` with its whole training split (subset and batching keys at their defaults)."""
    full = OmegaConf.create(OmegaConf.to_container(data_cfg, resolve=True))
    with open_dict(full):
        for key in SUBSET_KEYS:
            full.pop(key, None)
    return instantiate(full, augmentation=None, _recursive_=False)


def signature(data_cfg: DictConfig, datamodule: LightningDataModule) -> dict[str, Any]:
    """What the reference classifier of ``data_cfg`` must have been trained on."""
    return reference_signature(
        data_cfg.name,
        data_cfg.image_size,
        data_cfg.channels,
        data_cfg.num_classes,
        data_cfg.get("split_seed", 0),
        datamodule.fingerprint("train"),
    )


def train_reference_classifier(
    datamodule: LightningDataModule, wanted: dict[str, Any], training: DictConfig, path: Path, device: torch.device
) -> None:
    """Train a SimpleCNN on the train split, test it, save ``{state_dict, info}`` to ``path``."""
    print(
        f"genlab: training the reference classifier for data={wanted['data']} at {wanted['image_size']}px "
        f"(first use; cached at {path})",
        flush=True,
    )
    datamodule.batch_size = int(training.batch_size)
    num_classes = wanted["num_classes"]
    net = SimpleCNN(wanted["channels"], num_classes, wanted["image_size"], widths=list(training.widths), dropout=0.1)
    module = ClassifierModule(net, partial(torch.optim.Adam, lr=float(training.lr), weight_decay=1e-4), num_classes)
    with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as scratch:
        torch.manual_seed(wanted["split_seed"])
        trainer = Trainer(
            accelerator="gpu" if device.type == "cuda" else "cpu",
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
    info = {**wanted, "widths": list(training.widths), "test_acc": test_acc}
    atomic_torch_save({"state_dict": net.cpu().state_dict(), INFO_KEY: info}, path)
    print(f"genlab: reference classifier test accuracy {test_acc:.4f} ({path})", flush=True)


def classifier_of_cnn_run(run_dir: Path, checkpoint: Path) -> ClassifierFeatures:
    """The network of a ``model=cnn`` run as a feature network, described by its own data config."""
    run_cfg = load_run_config(run_dir)
    if not str(run_cfg.model.get("_target_", "")).endswith("ClassifierModule"):
        raise GenlabError(
            f"eval.classifier={run_dir} belongs to a model={run_cfg.model.name} run, not a classifier: "
            "pass the checkpoint or folder of a model=cnn run."
        )
    module = load_weights(instantiate(run_cfg.model), checkpoint)
    datamodule = reference_datamodule(run_cfg.data)
    return ClassifierFeatures(module.net, f"classifier:{file_digest(checkpoint)}", signature(run_cfg.data, datamodule))


def load_given_classifier(path: str | Path) -> ClassifierFeatures:
    """``eval.classifier``: a reference file, a ``model=cnn`` checkpoint, or a cnn run folder."""
    path = Path(str(path)).expanduser()
    if path.is_dir():
        candidates = [path / "checkpoints" / "best.ckpt", path / "checkpoints" / "last.ckpt"]
        path = next((c for c in candidates if c.is_file()), candidates[-1])
    if not path.is_file():
        raise GenlabError(f"eval.classifier={path} does not exist: pass a classifier checkpoint or omit it.")
    checkpoint = safe_torch_load(path)
    if isinstance(checkpoint, dict) and INFO_KEY in checkpoint:
        return load_reference_file(path)
    run_dir = path.parent.parent
    if not (run_dir / ".hydra" / "config.yaml").is_file():
        raise GenlabError(
            f"eval.classifier={path} is neither a reference classifier file nor inside a genlab run folder "
            "(<run>/checkpoints/*.ckpt): pass the checkpoint of a model=cnn run, or omit eval.classifier."
        )
    return classifier_of_cnn_run(run_dir, path)


def reference_classifier(
    data_cfg: DictConfig, settings: DictConfig, cache_dir: str | Path, device: torch.device
) -> ClassifierFeatures:
    """``eval.classifier`` when given, else the cached reference classifier (trained on first need)."""
    if int(data_cfg.num_classes) < 2:
        raise GenlabError(
            f"features=classifier needs a labelled dataset, but data={data_cfg.name} has no classes: "
            "use features=inception."
        )
    datamodule = reference_datamodule(data_cfg)
    wanted = signature(data_cfg, datamodule)
    if settings.get("classifier"):
        classifier = load_given_classifier(settings.classifier)
        check_matches(classifier, wanted, f"eval.classifier={settings.classifier}")
        return classifier.to(device)
    training = settings.reference_classifier
    path = cache_path(wanted, OmegaConf.to_container(training, resolve=True), cache_dir)
    with file_lock(path.with_suffix(".lock")):
        if not path.is_file():
            train_reference_classifier(datamodule, wanted, training, path, device)
    classifier = load_reference_file(path)
    check_matches(classifier, wanted, f"the cached reference classifier {path}")
    return classifier.to(device)
