"""Positive pairs within a labelled batch: DAGAN's discriminator sees two different images of one class."""

from __future__ import annotations

import torch
from torch import Tensor


def same_class_partners(labels: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(anchors, partners): indices i and j ≠ i into ``labels`` with ``labels[i] == labels[j]``.

    Every image whose class has another member in the batch is an anchor once; its partner is drawn
    uniformly from the other members of its class. Images alone in their class are left out.
    """
    labels = labels.cpu()
    n = len(labels)
    scores = torch.rand((n, n), generator=generator)
    same = (labels[:, None] == labels[None, :]) & ~torch.eye(n, dtype=torch.bool)
    scores = torch.where(same, scores, torch.full_like(scores, -1.0))
    anchors = same.any(1).nonzero().flatten()
    partners = scores[anchors].argmax(1)
    return anchors, partners
