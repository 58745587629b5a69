"""Scoring of generative models and classifiers under one protocol.

A :class:`GenerativeScorer` is given ready feature networks and the real features (the scoring
layer, :mod:`genlab.scoring`, builds them: reference classifier, Inception, cached statistics) and
scores anything that generates (:class:`~genlab.capabilities.Generates`) through ``generate`` alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genlab import progress
from genlab.capabilities import Generates, generates_conditionally
from genlab.errors import GenlabError
from genlab.metrics import scores
from genlab.metrics.features import ClassifierFeatures, FeatureNetwork
from genlab.metrics.memorization import MemorisationReference, memorisation_check

FEATURE_CHOICES = ("inception", "classifier")
METRIC_CHOICES = ("fid", "kid", "precision_recall", "class_acc", "class_hist", "memorisation")
CLASS_METRICS = ("class_acc", "class_hist")
GRID_SIZE = 64


def default_metrics(conditional: bool, num_classes: int) -> list[str]:
    """Every metric that applies: class metrics when the dataset has labels, and the memorisation check."""
    chosen = ["fid", "kid", "precision_recall"]
    if num_classes > 0:
        chosen.append("class_acc" if conditional else "class_hist")
    return [*chosen, "memorisation"]


def resolve_metrics(requested: Sequence[str] | str | None, conditional: bool, num_classes: int) -> list[str]:
    """The requested metrics (default: all that apply), refusing ones that cannot apply."""
    if requested is None:
        return default_metrics(conditional, num_classes)
    chosen = [requested] if isinstance(requested, str) else [str(m) for m in requested]
    for name in chosen:
        if name not in METRIC_CHOICES:
            raise GenlabError(f"metrics={name} is not a metric: choose from {', '.join(METRIC_CHOICES)}.")
    if "class_acc" in chosen and not conditional:
        raise GenlabError(
            "metrics=class_acc needs a conditional model, but this one is unconditional "
            "(it takes no labels): use metrics=class_hist (class_hist, class_coverage, class_kl) instead."
        )
    if num_classes == 0 and any(m in CLASS_METRICS for m in chosen):
        raise GenlabError("class metrics (class_acc, class_hist) need a labelled dataset; this one has no classes.")
    return chosen


def feature_choice(features: str | None, default: str | None) -> str:
    """``features=`` or the dataset's default (``fid_features`` in its yaml)."""
    choice = features or default or "inception"
    if choice not in FEATURE_CHOICES:
        raise GenlabError(f"features={choice} is not a feature network: choose inception or classifier.")
    return choice


@dataclass
class ScoringSettings:
    """How the statistics are computed (the ``eval`` settings node)."""

    batch_size: int = 250
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 3


class GenerativeScorer:
    """Scores ``n`` generated samples against real features in one feature space.

    Args:
        network: the feature network of FID/KID/precision-recall.
        real: features of the reference images (N, d), from the same network.
        classifier: the reference classifier for class metrics (may be ``network`` itself).
        metrics: names from :data:`METRIC_CHOICES` (already resolved).
        n: generated samples per score.
        num_classes: classes of the dataset (class histograms).
        settings: batch size and KID/PR parameters.
        protocol: what the scores are computed with (split, data fingerprint, ...), written beside them.
        memorisation: the training and held-out images of the memorisation check (``memorisation`` in
            ``metrics``); after :meth:`score`, ``nearest`` holds its grid (sample | 3 nearest training images
            in features | 3 in pixels, 7 images a row), else None.
    """

    def __init__(
        self,
        network: FeatureNetwork,
        real: Tensor,
        *,
        classifier: ClassifierFeatures | None,
        metrics: Sequence[str],
        n: int,
        num_classes: int,
        settings: ScoringSettings,
        protocol: Mapping[str, Any],
        memorisation: MemorisationReference | None = None,
    ) -> None:
        if n < 2:
            raise GenlabError(f"n={n} is too small: scoring needs at least 2 generated samples.")
        if "fid" in metrics:
            scores.check_fid_sizes(len(real), n, network.num_features)
        self.network = network
        self.real = real
        self.classifier = classifier
        self.metrics = list(metrics)
        self.n = n
        self.num_classes = num_classes
        self.settings = settings
        self.protocol = dict(protocol)
        self.memorisation = memorisation if "memorisation" in self.metrics else None
        self.nearest: Tensor | None = None

    def describe(self) -> dict[str, Any]:
        """What the scores were computed with: written beside them in metrics.json."""
        info: dict[str, Any] = {
            "n": self.n,
            "n_real": len(self.real),
            **self.protocol,
            "features": self.network.name,
            "feature_network": self.network.identity,
            "feature_dim": self.network.num_features,
        }
        if self.classifier is not None:
            info["reference_classifier"] = self.classifier.identity
            if "test_acc" in self.classifier.info:
                info["reference_classifier_test_acc"] = self.classifier.info["test_acc"]
        return info

    def _generate(
        self, model: Generates, labels: Tensor | None, seed: int, options: dict[str, Any], timing: dict[str, float]
    ) -> Iterator[Tensor]:
        """Batches of samples; adds the wall and process-CPU seconds spent in ``generate`` to ``timing``."""
        generator = torch.Generator(device=model.device).manual_seed(seed)
        batch = int(self.settings.batch_size)
        for start in range(0, self.n, batch):
            size = min(batch, self.n - start)
            wanted = None if labels is None else labels[start : start + size].to(model.device)
            wall, cpu = time.perf_counter(), time.process_time()
            with progress.part(size):
                images = model.generate(size, labels=wanted, generator=generator, **options)
            if tuple(images.shape) != (size, *model.image_shape):
                raise GenlabError(
                    f"{type(model).__name__}.generate returned images of shape {tuple(images.shape)}, but the "
                    f"model declares {tuple(model.image_shape)}: the run's model and data do not match."
                )
            if not torch.isfinite(images).all():
                raise GenlabError(f"{type(model).__name__} generated NaN or infinite pixels: the model has diverged.")
            timing["wall"] += time.perf_counter() - wall
            timing["cpu"] += time.process_time() - cpu
            yield images

    @torch.no_grad()
    def score(
        self, model: Generates, seed: int = 0, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], Tensor]:
        """Generate ``n`` samples and score them; returns (metrics, the first 64 samples in [-1, 1])."""
        started = time.perf_counter()
        was_training = model.training
        model.eval()
        # conditional models: every class in turn (balanced, and the grid shows all classes)
        conditional = generates_conditionally(model)
        labels = torch.arange(self.n) % model.num_classes if conditional else None
        fake, predicted, grid, checked = [], [], [], []
        timing = {"wall": 0.0, "cpu": 0.0}
        wanted = self.memorisation.samples if self.memorisation is not None else 0
        try:
            for images in self._generate(model, labels, seed, options or {}, timing):
                kept = sum(len(g) for g in grid)
                if kept < GRID_SIZE:
                    grid.append(images[: GRID_SIZE - kept].cpu())
                held = sum(len(c) for c in checked)
                if held < wanted:
                    checked.append(images[: wanted - held].cpu())
                device = next(self.network.parameters()).device
                if self.classifier is not None:
                    feats, logits = self.classifier.features_and_logits(images.to(device))
                    predicted.append(logits.argmax(dim=1).cpu())
                    if self.network is self.classifier:
                        fake.append(feats.double().cpu())
                if self.network is not self.classifier:
                    fake.append(self.network(images.to(device)).double().cpu())
        finally:
            model.train(was_training)
        out = self.describe()
        out["seed"] = seed
        fake = torch.cat(fake)
        out.update(self._metrics(fake, torch.cat(predicted) if predicted else None, labels, seed))
        self.nearest = None
        if self.memorisation is not None:
            memorised, self.nearest = memorisation_check(self.memorisation, torch.cat(checked), fake)
            out.update(memorised)
        out["eval_seconds"] = round(time.perf_counter() - started, 2)
        # Time in generate() alone (the isfinite check synchronises a GPU): wall and this process's CPU seconds.
        out["generation_seconds"] = round(timing["wall"], 3)
        out["generation_cpu_seconds"] = round(timing["cpu"], 3)
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
            out.update(scores.class_distribution(predicted, self.num_classes))
        return out


@torch.no_grad()
def classifier_report(
    classify: Any, batches: Any, split: str, num_classes: int, device: torch.device
) -> dict[str, Any]:
    """Accuracy and per-class accuracy of ``classify(images) -> logits`` over the ``(images, labels)`` batches."""
    predicted, labels = [], []
    for images, target in batches:
        predicted.append(classify(images.to(device)).argmax(dim=1).cpu())
        labels.append(target)
    predicted, labels = torch.cat(predicted), torch.cat(labels)
    return {
        f"{split}/acc": scores.class_accuracy(predicted, labels),
        f"{split}/per_class_acc": scores.per_class_accuracy(predicted, labels, num_classes),
        "n": len(labels),
        "split": split,
    }
