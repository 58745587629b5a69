"""Scoring of generative models and classifiers under one protocol, shared by ``genlab eval``,
the end of ``genlab train`` and the periodic ``val/fid`` callback.

A :class:`GenerativeScorer` is built once for a dataset, split, feature network and sample count
(it loads or trains the reference classifier and loads or computes the real features), then scores
any :class:`~genlab.models.base.GenerativeModule` through its ``generate`` method alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor

from genlab.errors import GenlabError
from genlab.metrics import scores
from genlab.metrics.features import ClassifierFeatures, FeatureNetwork, inception_network
from genlab.metrics.real_stats import real_features
from genlab.metrics.reference import reference_classifier
from genlab.models.base import GenerativeModule

log = logging.getLogger("genlab")

FEATURE_CHOICES = ("inception", "classifier")
METRIC_CHOICES = ("fid", "kid", "precision_recall", "class_acc", "class_hist")
CLASS_METRICS = ("class_acc", "class_hist")
GRID_SIZE = 64


def default_metrics(conditional: bool, num_classes: int) -> list[str]:
    """Every metric that applies: class metrics when the dataset has labels."""
    chosen = ["fid", "kid", "precision_recall"]
    if num_classes > 0:
        chosen.append("class_acc" if conditional else "class_hist")
    return chosen


def resolve_metrics(requested: Sequence[str] | str | None, model: GenerativeModule, num_classes: int) -> list[str]:
    """The requested metrics (default: all that apply), refusing ones that cannot apply."""
    if requested is None:
        return default_metrics(model.conditional, num_classes)
    chosen = [requested] if isinstance(requested, str) else [str(m) for m in requested]
    for name in chosen:
        if name not in METRIC_CHOICES:
            raise GenlabError(f"metrics={name} is not a metric: choose from {', '.join(METRIC_CHOICES)}.")
    if "class_acc" in chosen and not model.conditional:
        raise GenlabError(
            f"metrics=class_acc needs a conditional model, but {type(model).__name__} is unconditional "
            "(it takes no labels): use metrics=class_hist (class_hist, class_coverage, class_kl) instead."
        )
    if num_classes == 0 and any(m in CLASS_METRICS for m in chosen):
        raise GenlabError("class metrics (class_acc, class_hist) need a labelled dataset; this one has no classes.")
    return chosen


def feature_choice(features: str | None, data_cfg: DictConfig) -> str:
    """``features=`` or the dataset's default (``fid_features`` in its yaml)."""
    choice = features or data_cfg.get("fid_features") or "inception"
    if choice not in FEATURE_CHOICES:
        raise GenlabError(f"features={choice} is not a feature network: choose inception or classifier.")
    return choice


class GenerativeScorer:
    """Scores generated samples against ``n_real`` images of ``split`` in one feature space.

    Args:
        data_cfg: the run's ``data`` config node.
        settings: the ``eval`` settings node (classifier, inception weights, KID/PR parameters).
        split: reference split.
        features: ``inception`` | ``classifier`` | None (the dataset's default).
        metrics: names from :data:`METRIC_CHOICES` (already resolved).
        n: number of generated samples per score.
        cache_dir: where the reference classifier and the real statistics are cached.
        device: device of the feature networks.
        datamodule: the run's datamodule, when one is at hand.
    """

    def __init__(
        self,
        data_cfg: DictConfig,
        settings: DictConfig,
        *,
        split: str,
        features: str | None,
        metrics: Sequence[str],
        n: int,
        cache_dir: str | Path,
        device: torch.device,
        datamodule: Any = None,
    ) -> None:
        if n < 2:
            raise GenlabError(f"n={n} is too small: scoring needs at least 2 generated samples.")
        self.data_cfg = data_cfg
        self.settings = settings
        self.split = split
        self.metrics = list(metrics)
        self.n = n
        self.device = device
        self.features = feature_choice(features, data_cfg)
        self.datamodule = datamodule or instantiate(data_cfg, augmentation=None, _recursive_=False)
        self.n_real = min(len(self.datamodule.dataset(split)), int(settings.max_n))
        self.classifier: ClassifierFeatures | None = None
        if self.features == "classifier" or any(m in CLASS_METRICS for m in self.metrics):
            self.classifier = reference_classifier(data_cfg, settings, cache_dir, device)
        if self.features == "classifier":
            self.network: FeatureNetwork = self.classifier
        else:
            self.network = inception_network(settings, device)
        if "fid" in self.metrics:
            scores.check_fid_sizes(self.n_real, n, self.network.num_features)
        self.real = real_features(self.datamodule, data_cfg, split, self.n_real, self.network, cache_dir, device)

    def describe(self) -> dict[str, Any]:
        """What the scores were computed with: written beside them in metrics.json."""
        info: dict[str, Any] = {
            "n": self.n,
            "n_real": self.n_real,
            "split": self.split,
            "features": self.features,
            "feature_network": self.network.identity,
            "feature_dim": self.network.num_features,
        }
        if self.classifier is not None:
            info["reference_classifier"] = self.classifier.identity
            if "test_acc" in self.classifier.info:
                info["reference_classifier_test_acc"] = self.classifier.info["test_acc"]
        return info

    def _generate(
        self, model: GenerativeModule, labels: Tensor | None, seed: int, options: dict[str, Any]
    ) -> Iterator[Tensor]:
        generator = torch.Generator(device=model.device).manual_seed(seed)
        batch = int(self.settings.batch_size)
        shape = (int(self.data_cfg.channels), int(self.data_cfg.image_size), int(self.data_cfg.image_size))
        for start in range(0, self.n, batch):
            size = min(batch, self.n - start)
            wanted = None if labels is None else labels[start : start + size].to(model.device)
            images = model.generate(size, labels=wanted, generator=generator, **options)
            if tuple(images.shape) != (size, *shape):
                raise GenlabError(
                    f"{type(model).__name__}.generate returned images of shape {tuple(images.shape)}, but "
                    f"data={self.data_cfg.name} holds {shape} images: the run's model and data do not match."
                )
            if not torch.isfinite(images).all():
                raise GenlabError(f"{type(model).__name__} generated NaN or infinite pixels: the model has diverged.")
            yield images

    @torch.no_grad()
    def score(
        self, model: GenerativeModule, seed: int = 0, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], Tensor]:
        """Generate ``n`` samples and score them; returns (metrics, the first 64 samples in [-1, 1])."""
        started = time.perf_counter()
        was_training = model.training
        model.eval()
        # conditional models: every class in turn (balanced, and the grid shows all classes)
        labels = torch.arange(self.n) % model.num_classes if model.conditional else None
        fake, predicted, grid = [], [], []
        try:
            for images in self._generate(model, labels, seed, options or {}):
                kept = sum(len(g) for g in grid)
                if kept < GRID_SIZE:
                    grid.append(images[: GRID_SIZE - kept].cpu())
                if self.classifier is not None:
                    feats, logits = self.classifier.features_and_logits(images.to(self.device))
                    predicted.append(logits.argmax(dim=1).cpu())
                    if self.network is self.classifier:
                        fake.append(feats.double().cpu())
                if self.network is not self.classifier:
                    fake.append(self.network(images.to(self.device)).double().cpu())
        finally:
            model.train(was_training)
        out = self.describe()
        out["seed"] = seed
        out.update(self._metrics(torch.cat(fake), torch.cat(predicted) if predicted else None, labels, seed))
        out["eval_seconds"] = round(time.perf_counter() - started, 2)
        return out, torch.cat(grid)

    def _metrics(self, fake: Tensor, predicted: Tensor | None, labels: Tensor | None, seed: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "fid" in self.metrics:
            out["fid"] = scores.fid(self.real, fake)
        if "kid" in self.metrics:
            out["kid_mean"], out["kid_std"] = scores.kid(
                self.real, fake, int(self.settings.kid_subsets), int(self.settings.kid_subset_size), seed
            )
        if "precision_recall" in self.metrics:
            # equally many real and generated samples, as in the paper: k-NN radii shrink with set size
            m = min(len(self.real), len(fake))
            out["precision"], out["recall"] = scores.precision_recall(self.real[:m], fake[:m], int(self.settings.pr_k))
            out["pr_n"] = m
        if "class_acc" in self.metrics and predicted is not None and labels is not None:
            out["class_acc"] = scores.class_accuracy(predicted, labels)
        if "class_hist" in self.metrics and predicted is not None:
            out.update(scores.class_distribution(predicted, int(self.data_cfg.num_classes)))
        return out


@torch.no_grad()
def classifier_report(model: Any, datamodule: Any, split: str, num_classes: int) -> dict[str, Any]:
    """Accuracy and per-class accuracy of a classifier run on ``split``."""
    model.eval()
    predicted, labels = [], []
    for images, target in datamodule.dataloader(split):
        predicted.append(model(images.to(model.device)).argmax(dim=1).cpu())
        labels.append(target)
    predicted, labels = torch.cat(predicted), torch.cat(labels)
    return {
        f"{split}/acc": scores.class_accuracy(predicted, labels),
        f"{split}/per_class_acc": scores.per_class_accuracy(predicted, labels, num_classes),
        "n": len(labels),
        "split": split,
    }
