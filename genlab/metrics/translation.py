"""Scores of a paired image-to-image translator (pix2pix) on a split of pairs (A, B).

- ``l1``, ``psnr``, ``ssim``: G(A) against B pixel by pixel (torchmetrics, pixels in [0, 1], PSNR
  averaged per image).
- ``fid``: the translated images G(A) against the targets B of the same pairs, in the feature
  network of the *target* domain: for edge pairs built from an image dataset (``data.source``,
  e.g. ``edges2digits`` → digits) that dataset's default (``classifier`` for digits: its reference
  classifier), for ``paired_folder`` ``inception``. Both sets hold the same ``n`` images, so FID
  needs ``n`` larger than the feature dimension.
- ``class_acc`` (class consistency): where the targets are labelled and a reference classifier of the
  target domain is given, the share of G(A) it assigns to the class of the pair.

Two-way unpaired translators (CycleGAN) are scored by :mod:`genlab.metrics.unpaired_translation`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from genlab.errors import GenlabError
from genlab.imaging import to_unit_range
from genlab.metrics import scores
from genlab.metrics.features import ClassifierFeatures, FeatureNetwork

PIXEL_METRICS = ("l1", "psnr", "ssim")
TRANSLATION_METRICS = (*PIXEL_METRICS, "fid")
WITHOUT_FID = "metrics=[l1,psnr,ssim]"
# Scored on request (and by default where FID uses the target domain's reference classifier).
CLASS_CONSISTENCY = "class_acc"


def translation_metric_collection(prefix: str = "") -> MetricCollection:
    """L1 (mean absolute error), PSNR and SSIM of images in [0, 1]; PSNR is averaged per image."""
    return MetricCollection(
        {
            "l1": MeanAbsoluteError(),
            "psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)),
            "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
        },
        prefix=prefix,
    )


def resolve_translation_metrics(requested: Sequence[str] | str | None) -> list[str]:
    """``metrics=`` of a translation run: a subset of l1, psnr, ssim, fid, class_acc (default: the first four;
    ``class_acc`` comes with a classifier-feature FID where the targets are labelled)."""
    if requested is None:
        return list(TRANSLATION_METRICS)
    chosen = [requested] if isinstance(requested, str) else [str(m) for m in requested]
    for name in chosen:
        if name not in (*TRANSLATION_METRICS, CLASS_CONSISTENCY):
            raise GenlabError(
                f"metrics={name} is not a metric of image translation: choose from "
                f"{', '.join(TRANSLATION_METRICS)}, {CLASS_CONSISTENCY}."
            )
    return chosen


def network_device(network: torch.nn.Module | None) -> torch.device:
    """Where a scoring network runs (the CPU without one)."""
    return next(network.parameters()).device if network is not None else torch.device("cpu")


@dataclass
class TranslationPass:
    """What one pass over pairs gathered: pixel scores, features of B and G(A) (or None), pair count,
    and the reference classifier's predicted classes of G(A) (or None)."""

    pixel: dict[str, float]
    real: Tensor | None
    fake: Tensor | None
    n: int
    predicted: Tensor | None = None


@torch.no_grad()
def translate_pairs(
    translate: Callable[[Tensor], Tensor],
    pairs: Iterable[tuple[Tensor, Tensor]],
    device: torch.device,
    n: int | None = None,
    network: FeatureNetwork | None = None,
    classifier: ClassifierFeatures | None = None,
) -> TranslationPass:
    """Translate the inputs A of the first ``n`` pairs (all when None); score G(A) against B.

    With a feature network, also returns the features of B (``real``) and of G(A) (``fake``); with a
    classifier, its predicted classes of G(A).
    """
    pixel = translation_metric_collection().to(device)
    real, fake, predicted = [], [], []
    seen = 0
    for inputs, targets in pairs:
        take = len(inputs) if n is None else min(len(inputs), n - seen)
        if take <= 0:
            break
        inputs, targets = inputs[:take].to(device), targets[:take].to(device)
        generated = translate(inputs)
        if generated.shape != targets.shape:
            raise GenlabError(
                f"the translator returned images of shape {tuple(generated.shape[1:])}, but the targets are "
                f"{tuple(targets.shape[1:])}: the run's model and data do not match."
            )
        if not torch.isfinite(generated).all():
            raise GenlabError("the translator produced NaN or infinite pixels: the model has diverged.")
        pixel.update(to_unit_range(generated), to_unit_range(targets))
        if network is not None:
            real.append(network(targets).double().cpu())
            fake.append(network(generated).double().cpu())
        if classifier is not None:
            predicted.append(classifier.features_and_logits(generated)[1].argmax(1).cpu())
        seen += take
    if seen == 0:
        raise GenlabError("there are no pairs to score: the split is empty.")
    values = {key: float(value) for key, value in pixel.compute().items()}
    classes = torch.cat(predicted) if classifier is not None else None
    if network is None:
        return TranslationPass(values, None, None, seen, classes)
    return TranslationPass(values, torch.cat(real), torch.cat(fake), seen, classes)


class TranslationScorer:
    """Scores a translator on the first ``n`` pairs of a split (see the module docstring).

    Args:
        network: the target domain's feature network for FID, or None when FID is not asked for.
        metrics: names from :data:`TRANSLATION_METRICS` (already resolved).
        n: pairs to score (at most the split's size).
        split_size: pairs the split holds.
        protocol: what the scores are computed with (split, data, fingerprint, ...), written beside them.
        classifier: the target domain's reference classifier for ``class_acc`` (None: not scored).
    """

    def __init__(
        self,
        network: FeatureNetwork | None,
        *,
        metrics: Sequence[str],
        n: int,
        split_size: int,
        protocol: dict[str, Any],
        classifier: ClassifierFeatures | None = None,
    ) -> None:
        self.metrics = list(metrics)
        self.n = min(n, split_size)
        self.network = network
        self.classifier = classifier
        self.protocol = dict(protocol)
        if network is not None:
            self._check_fid_size(split_size)

    def _check_fid_size(self, split_size: int) -> None:
        """The rule of :func:`scores.check_fid_sizes` (n > d), explained for pairs of one split."""
        dim = self.network.num_features
        if self.n > dim:
            return
        if split_size > dim:
            advice = f"raise n (n={dim + 1} to n={split_size})"
        else:
            advice = "score a larger split (split=train)"
            if self.network.name == "inception":
                advice += ", use features=classifier where the targets are labelled images"
        raise GenlabError(
            f"FID needs more image pairs than feature dimensions (n > d), but it gets n = {self.n} of the "
            f"{split_size} pairs of the {self.protocol.get('split')} split of data={self.protocol.get('data')}, and "
            f"the {self.network.name} features have d = {dim}: {advice}, or leave FID out: {WITHOUT_FID}."
        )

    def describe(self) -> dict[str, Any]:
        """What the scores were computed with: written beside them in metrics.json."""
        info: dict[str, Any] = {"n": self.n, **self.protocol}
        if self.network is not None:
            info.update(
                features=self.network.name,
                feature_network=self.network.identity,
                feature_dim=self.network.num_features,
            )
        if isinstance(self.network, ClassifierFeatures) and "test_acc" in self.network.info:
            info["reference_classifier_test_acc"] = self.network.info["test_acc"]
        return info

    def score(
        self,
        translate: Callable[[Tensor], Tensor],
        pairs: Iterable[tuple[Tensor, Tensor]],
        labels: Tensor | None = None,
    ) -> dict[str, Any]:
        """Translate the inputs of the first ``n`` pairs and score them: the requested metrics + how.
        ``labels``: the classes of the split's pairs in order (class consistency needs them and a classifier)."""
        started = time.perf_counter()
        classifier = self.classifier if labels is not None else None
        device = network_device(self.network or classifier)
        result = translate_pairs(translate, pairs, device, self.n, self.network, classifier)
        out = {key: result.pixel[key] for key in PIXEL_METRICS if key in self.metrics}
        if self.network is not None:
            out["fid"] = scores.fid(result.real, result.fake)
        if result.predicted is not None:
            out["class_acc"] = scores.class_accuracy(result.predicted, labels[: result.n])
        out.update(self.describe())
        out["n"] = result.n
        out["eval_seconds"] = round(time.perf_counter() - started, 2)
        return out
