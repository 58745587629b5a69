"""Scores of a two-way unpaired translator (CycleGAN: G: A → B, F: B → A) on one split of two domains.

Per direction (AtoB scores G, BtoA scores F; BtoA keys end in ``_BtoA``):

- ``fid``: the translations of the split's first ``n`` source images against the split's first ``n``
  target-domain images (each image once), in one feature network (the target domain's default for
  AtoB; the same network for BtoA, so for edge maps from digits FID_BtoA is in the digits
  classifier's features: comparable between runs, not with other datasets);
- ``l1``, ``psnr``, ``ssim``: only where the split keeps true pairs (row i of A and B show the same
  content, e.g. ``unpaired_edges2digits``), as for pix2pix (pixels in [0, 1]);
- ``cycle_l1_A`` = mean |F(G(A)) − A| and ``cycle_l1_B`` = mean |G(F(B)) − B| on images in [-1, 1];
- ``class_acc`` (AtoB only, class consistency): where the inputs are labelled and a reference classifier
  of domain B is given, the share of G(A) that it assigns to the class of A.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from genlab.errors import GenlabError
from genlab.imaging import to_unit_range
from genlab.metrics import scores
from genlab.metrics.features import ClassifierFeatures, FeatureNetwork
from genlab.metrics.translation import PIXEL_METRICS, TranslationScorer, network_device, translation_metric_collection

Translate = Callable[[Tensor, str], Tensor]
DomainBatches = Callable[[str], Iterable[Tensor]]
REVERSE = {"AtoB": "BtoA", "BtoA": "AtoB"}


def suffixed(key: str, direction: str) -> str:
    """The name of ``key`` for ``direction``: plain for AtoB, ``<key>_BtoA`` for BtoA."""
    return key if direction == "AtoB" else f"{key}_{direction}"


class UnpairedTranslationScorer(TranslationScorer):
    """Scores both directions of an unpaired translator (see the module docstring).

    Args:
        network: the feature network for FID, or None when FID is not asked for.
        metrics: names from :data:`~genlab.metrics.translation.TRANSLATION_METRICS` (pixel metrics are
            scored only where ``true_pairs``).
        n: images per domain to score (at most each domain's size).
        sizes: images of each domain (``A``, ``B``) in the split.
        true_pairs: the split's rows are true pairs (A_i, B_i).
        protocol: what the scores are computed with, written beside them.
        classifier: the B domain's reference classifier for ``class_acc`` (None: not scored).
    """

    def __init__(
        self,
        network: FeatureNetwork | None,
        *,
        metrics: Sequence[str],
        n: int,
        sizes: Mapping[str, int],
        true_pairs: bool,
        protocol: dict[str, Any],
        classifier: ClassifierFeatures | None = None,
    ) -> None:
        self.counts = {domain: min(n, size) for domain, size in sizes.items()}
        self.true_pairs = true_pairs
        super().__init__(
            network,
            metrics=metrics,
            n=n,
            split_size=min(sizes.values()),
            protocol={**protocol, "true_pairs": true_pairs},
            classifier=classifier,
        )
        self.n = min(n, max(sizes.values()))

    def _check_fid_size(self, split_size: int) -> None:
        dim = self.network.num_features
        for domain, count in self.counts.items():
            if count <= dim:
                raise GenlabError(
                    f"FID needs more images than feature dimensions (n > d), but domain {domain} of the "
                    f"{self.protocol.get('split')} split of data={self.protocol.get('data')} gives {count} and the "
                    f"{self.network.name} features have d = {dim}: raise n (n={dim + 1}) or score a larger split "
                    "(split=train), or leave FID out: metrics=[l1,psnr,ssim]."
                )

    def _features(self, batches: Iterable[Tensor], count: int, device: torch.device) -> Tensor:
        """Features of the first ``count`` images of one domain."""
        return torch.cat([self.network(x.to(device)).double().cpu() for x in _first(batches, count)])

    def _direction(
        self, translate: Translate, direction: str, batches: DomainBatches, labels: Tensor | None
    ) -> dict[str, float]:
        source, target = direction[0], direction[-1]
        device = network_device(self.network or self.classifier)
        pixel = translation_metric_collection().to(device)
        score_pixels = self.true_pairs and any(m in PIXEL_METRICS for m in self.metrics)
        classifier = self.classifier if direction == "AtoB" and labels is not None else None
        targets = iter(_first(batches(target), self.counts[target])) if score_pixels else None
        fake, predicted, cycle_sum, seen = [], [], 0.0, 0
        with torch.no_grad():
            for inputs in _first(batches(source), self.counts[source]):
                inputs = inputs.to(device)
                outputs = translate(inputs, direction)
                if not torch.isfinite(outputs).all():
                    raise GenlabError("the translator produced NaN or infinite pixels: the model has diverged.")
                cycle_sum += float((translate(outputs, REVERSE[direction]) - inputs).abs().mean()) * len(inputs)
                if targets is not None:
                    pixel.update(to_unit_range(outputs), to_unit_range(next(targets).to(device)))
                if self.network is not None:
                    fake.append(self.network(outputs).double().cpu())
                if classifier is not None:
                    predicted.append(classifier.features_and_logits(outputs)[1].argmax(1).cpu())
                seen += len(inputs)
        out = {f"cycle_l1_{source}": cycle_sum / seen}
        if score_pixels:
            values = pixel.compute()
            out.update({suffixed(k, direction): float(values[k]) for k in PIXEL_METRICS if k in self.metrics})
        if self.network is not None:
            real = self._features(batches(target), self.counts[target], device)
            out[suffixed("fid", direction)] = scores.fid(real, torch.cat(fake))
        if predicted:
            out["class_acc"] = scores.class_accuracy(torch.cat(predicted), labels[:seen])
        return out

    def score(self, translate: Translate, batches: DomainBatches, labels: Tensor | None = None) -> dict[str, Any]:
        """Score both directions. ``batches(domain)`` yields the split's images of ``domain`` (``A`` or ``B``)
        in order, in [-1, 1]; ``labels`` are the classes of the A images in order (None: unlabelled)."""
        started = time.perf_counter()
        out: dict[str, Any] = {}
        for direction in ("AtoB", "BtoA"):
            out.update(self._direction(translate, direction, batches, labels))
        out.update(self.describe())
        out.update(n=self.counts["A"], n_B=self.counts["B"], eval_seconds=round(time.perf_counter() - started, 2))
        return out


def _first(batches: Iterable[Tensor], count: int) -> Iterable[Tensor]:
    """The batches holding the first ``count`` images (the last one cut)."""
    seen = 0
    for batch in batches:
        if seen >= count:
            return
        yield batch[: count - seen]
        seen += len(batch)
