"""Scores of generated against real feature sets: FID and KID (torchmetrics), precision/recall
(Kynkäänniemi et al. 2019) and class statistics of a reference classifier's predictions.

Every function takes features that are already extracted (N, d), so the expensive network runs
once per image and the real side can come from the on-disk statistics cache.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from genlab.errors import GenlabError


class PrecomputedFeatures(nn.Module):
    """The identity, posing as torchmetrics' feature extractor: the inputs already are features."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def check_fid_sizes(n_real: int, n_fake: int, dim: int) -> None:
    """FID fits a full covariance in ``dim`` dimensions: it needs more samples than dimensions on both sides."""
    if n_real <= dim:
        raise GenlabError(
            f"FID needs more samples than feature dimensions (n > d), but the reference split holds only "
            f"{n_real} images and the feature network has d = {dim}; more generated samples cannot fix that. "
            "Score against a larger split (split=train), or drop FID and use KID, which works for small sets: "
            "metrics=[kid,precision_recall]."
        )
    if n_fake <= dim:
        raise GenlabError(
            f"FID needs more samples than feature dimensions (n > d), but n = {n_fake} generated samples and the "
            f"feature network has d = {dim}: raise n (n={dim + 1} or more), or drop FID and use KID: "
            "metrics=[kid,precision_recall]."
        )


def fid(real: Tensor, fake: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (torchmetrics, float64)."""
    check_fid_sizes(len(real), len(fake), real.shape[1])
    metric = FrechetInceptionDistance(feature=PrecomputedFeatures(real.shape[1]), normalize=False)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kid(real: Tensor, fake: Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (mean, std over ``subsets`` random subsets), torchmetrics.

    The subset size shrinks to the smaller of the two sets when they hold fewer samples; the
    subsets are drawn with their own seed, so a score does not depend on the global RNG.
    """
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise GenlabError(f"KID needs at least 2 samples on each side; got n={len(fake)} generated, {len(real)} real.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(
            feature=PrecomputedFeatures(real.shape[1]), subsets=subsets, subset_size=size, normalize=False
        )
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def _kth_neighbour_radii(features: Tensor, k: int, block: int = 2048) -> Tensor:
    """Distance of each sample to its k-th nearest neighbour in the same set (itself excluded)."""
    radii = []
    for start in range(0, len(features), block):
        dist = torch.cdist(features[start : start + block], features)
        radii.append(dist.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def _inside_manifold(reference: Tensor, radii: Tensor, queries: Tensor, block: int = 2048) -> Tensor:
    """Share of ``queries`` inside at least one k-NN ball around the ``reference`` samples."""
    inside = []
    for start in range(0, len(queries), block):
        dist = torch.cdist(queries[start : start + block], reference)
        inside.append((dist <= radii.unsqueeze(0)).any(dim=1))
    return torch.cat(inside).float().mean()


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    Precision: share of generated samples inside the real manifold (quality). Recall: share of
    real samples inside the generated manifold (diversity).
    """
    if min(len(real), len(fake)) <= k:
        raise GenlabError(f"precision/recall with k={k} needs more than {k} samples on each side.")
    real, fake = real.float(), fake.float()
    precision = _inside_manifold(real, _kth_neighbour_radii(real, k), fake)
    recall = _inside_manifold(fake, _kth_neighbour_radii(fake, k), real)
    return float(precision), float(recall)


def class_distribution(predicted: Tensor, num_classes: int) -> dict[str, float | list[float]]:
    """Mode-collapse statistics of unconditional samples from a reference classifier's predictions.

    ``class_hist``: share of samples per predicted class; ``class_coverage``: share of classes that
    receive at least 1/(2K) of the samples; ``class_kl``: KL(histogram ‖ uniform) in nats (0 for a
    perfectly balanced model, log K when every sample falls into one class).
    """
    hist = torch.bincount(predicted, minlength=num_classes).double() / len(predicted)
    covered = (hist >= 1 / (2 * num_classes)).double().mean()
    nonzero = hist[hist > 0]
    kl = (nonzero * (nonzero * num_classes).log()).sum()
    return {
        "class_hist": [round(float(v), 6) for v in hist],
        "class_coverage": float(covered),
        "class_kl": float(kl),
    }


def class_accuracy(predicted: Tensor, requested: Tensor) -> float:
    """Share of conditional samples that the reference classifier assigns to the requested label."""
    return float((predicted == requested).double().mean())


def per_class_accuracy(predicted: Tensor, labels: Tensor, num_classes: int) -> list[float | None]:
    """Accuracy within each true class (None for a class absent from ``labels``)."""
    out: list[float | None] = []
    for c in range(num_classes):
        mask = labels == c
        out.append(float((predicted[mask] == c).double().mean()) if mask.any() else None)
    return out
