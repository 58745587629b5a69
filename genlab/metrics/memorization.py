"""Memorisation check: is a generator copying its training images?

For each generated sample, its nearest training images (Euclidean distance in a feature space or
in pixels). The summary number is the share of samples closer to a training image than the median
training-to-training nearest-neighbour distance (each training image's nearest OTHER training
image). A generator that draws fresh samples from the data distribution scores about the same as
real test images (≈ 0.5); a copying generator scores towards 1.

Pure functions on tensors (N, ...), flattened per sample; no model, no files. Distances are
computed in float64 from ‖a‖² + ‖b‖² − 2a·b in blocks of ``batch_size`` × ``batch_size``, so
memory stays at a few blocks whatever the set sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class MemorisationReport:
    """Result of :func:`memorisation`.

    indices, distances: (M, k) nearest training images of each generated sample, nearest first.
    threshold: median training-to-training nearest-neighbour distance (self excluded; the lower
        middle value for an even count, as ``torch.median``).
    share: share of generated samples whose nearest training image is closer than ``threshold``.
    baseline_share: the same share for real test images (None when none were given).
    """

    indices: Tensor
    distances: Tensor
    threshold: float
    share: float
    baseline_share: float | None


def nearest_neighbours(
    queries: Tensor, reference: Tensor, k: int = 1, exclude_self: bool = False, batch_size: int = 1024
) -> tuple[Tensor, Tensor]:
    """Indices (M, k) and float64 Euclidean distances (M, k), nearest first, of each query's k nearest references.

    ``exclude_self``: queries and reference are the same set; query i never matches reference i.
    """
    q, r = queries.flatten(1), reference.flatten(1)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} features per sample but the reference has {r.shape[1]}")
    if exclude_self and len(q) != len(r):
        raise ValueError("exclude_self needs the queries to be the reference set itself")
    available = len(r) - int(exclude_self)
    if not 1 <= k <= available:
        raise ValueError(f"k={k} nearest neighbours asked of a reference set with {available} candidates")
    best_d, best_i = [], []
    for qs in range(0, len(q), batch_size):
        qc = q[qs : qs + batch_size].double()
        q_sq = qc.pow(2).sum(1, keepdim=True)
        block_d, block_i = [], []
        for rs in range(0, len(r), batch_size):
            rc = r[rs : rs + batch_size].double()
            d2 = (q_sq + rc.pow(2).sum(1) - 2 * qc @ rc.T).clamp_min_(0)
            if exclude_self:
                rows = torch.arange(qs, qs + len(qc), device=d2.device)[:, None]
                d2.masked_fill_(rows == torch.arange(rs, rs + len(rc), device=d2.device), float("inf"))
            values, idx = d2.topk(min(k, len(rc)), dim=1, largest=False)
            block_d.append(values)
            block_i.append(idx + rs)
        values, pick = torch.cat(block_d, dim=1).topk(k, dim=1, largest=False)
        best_d.append(values.sqrt())
        best_i.append(torch.cat(block_i, dim=1).gather(1, pick))
    return torch.cat(best_i), torch.cat(best_d)


def memorisation(
    generated: Tensor, train: Tensor, test: Tensor | None = None, k: int = 3, batch_size: int = 1024
) -> MemorisationReport:
    """Nearest training images of ``generated`` and the share closer than the median train-to-train distance.

    ``test`` (real images not trained on) gives the baseline share a non-copying generator should match.
    """
    if len(train) < 2:
        raise ValueError("the memorisation check needs at least 2 training samples")
    _, train_d = nearest_neighbours(train, train, 1, exclude_self=True, batch_size=batch_size)
    threshold = train_d[:, 0].median().item()
    indices, distances = nearest_neighbours(generated, train, k, batch_size=batch_size)
    share = (distances[:, 0] < threshold).double().mean().item()
    baseline = None
    if test is not None:
        _, test_d = nearest_neighbours(test, train, 1, batch_size=batch_size)
        baseline = (test_d[:, 0] < threshold).double().mean().item()
    return MemorisationReport(indices, distances, threshold, share, baseline)


NEIGHBOURS = 3  # training images shown per sample and per space in the grid


@dataclass(frozen=True)
class MemorisationReference:
    """What generated samples are compared with: the run's training images and real held-out images.

    train_images, test_images: uint8 (N, C, H, W), as stored (never augmented); test_* None: no baseline.
    train_features, test_features: the same images in the reference feature space (N, d).
    samples: generated samples checked (the first ones of a score); rows: samples shown in the grid.
    """

    train_images: Tensor
    train_features: Tensor
    test_images: Tensor | None
    test_features: Tensor | None
    samples: int = 1000
    rows: int = 16


def memorisation_check(
    reference: MemorisationReference, images: Tensor, features: Tensor
) -> tuple[dict[str, float | int | None], Tensor]:
    """Memorisation of generated ``images`` (in [-1, 1]) with their ``features``, in features and in pixels.

    Returns the metrics (``memorisation_share`` / ``memorisation_baseline`` in the feature space,
    ``..._pixels`` in pixels, and the set sizes) and the nearest-neighbour grid: for each of the first
    ``rows`` samples, the sample, its three nearest training images in the feature space, then in pixels
    (images in [-1, 1], ``1 + 2·NEIGHBOURS`` = 7 per row). Needs more than ``NEIGHBOURS`` training images.
    """
    m = min(reference.samples, len(images), len(features))
    k = NEIGHBOURS
    in_features = memorisation(features[:m], reference.train_features, reference.test_features, k=k)
    pixels = images[:m].float().add(1).mul(127.5)  # the uint8 scale of the stored training images
    in_pixels = memorisation(pixels, reference.train_images, reference.test_images, k=k)
    metrics: dict[str, float | int | None] = {
        "memorisation_share": in_features.share,
        "memorisation_baseline": in_features.baseline_share,
        "memorisation_share_pixels": in_pixels.share,
        "memorisation_baseline_pixels": in_pixels.baseline_share,
        "memorisation_n": m,
        "memorisation_train_n": len(reference.train_images),
        "memorisation_test_n": 0 if reference.test_images is None else len(reference.test_images),
    }
    train = reference.train_images.float().div(127.5).sub(1)
    rows = min(reference.rows, m)
    grid = [
        torch.cat([images[i : i + 1].float().cpu(), train[in_features.indices[i]], train[in_pixels.indices[i]]])
        for i in range(rows)
    ]
    return metrics, torch.cat(grid)
