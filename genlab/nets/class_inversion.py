"""A conditional diffusion UNet with learned embeddings of new classes (class inversion).

The frozen net's class table has rows 0..K−1 (its classes) and K (the null class of classifier-free
guidance). :class:`InversionUNet` adds M new classes as labels K..K+M−1 and moves the null class to
label K+M, so that ``num_classes`` keeps meaning "labels 0..num_classes−1, null = num_classes":

- label < K: row ``label`` of the frozen table; label K+M: its null row K;
- label K+i: the learned embedding of new class i, ``new_emb[i]``, shape (vectors, emb_dim). With
  ``vectors`` = 1 it is one vector, as textual inversion learns one token; with more, the timesteps
  are cut into ``vectors`` equal ranges with one vector each (a time-dependent embedding, as later
  inversion methods use, for shapes one vector cannot reach).

Everything else is the frozen net: only ``new_emb`` is meant to be optimised.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from genlab.errors import GenlabError
from genlab.nets.diffusion_unet import DiffusionUNet, sinusoidal_embedding


class InversionUNet(DiffusionUNet):
    """:class:`DiffusionUNet` built with ``num_classes`` = K (the frozen classes), plus ``new_classes`` learned ones.

    Args:
        new_classes: M, the learned classes (labels K..K+M−1).
        vectors: embedding vectors per new class, one per range of timesteps.
        timesteps: T of the schedule (to cut t into ``vectors`` ranges).
        **kwargs: the frozen net's arguments (``num_classes`` > 0 among them).
    """

    def __init__(self, *args: Any, new_classes: int = 1, vectors: int = 1, timesteps: int = 1000, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.class_emb is None:
            raise GenlabError("class inversion needs a class-conditional net (num_classes > 0).")
        if new_classes < 1 or vectors < 1:
            raise GenlabError(f"new classes ({new_classes}) and vectors ({vectors}) must be at least 1.")
        self.base_classes = self.num_classes
        self.num_classes = self.base_classes + new_classes
        self.vectors, self.timesteps = vectors, timesteps
        self.new_emb = nn.Parameter(torch.zeros(new_classes, vectors, self.class_emb.embedding_dim))

    @torch.no_grad()
    def init_new_embeddings(self) -> None:
        """Start every new class at the mean embedding of the frozen classes (an "average class")."""
        mean = self.class_emb.weight[: self.base_classes].mean(0)
        self.new_emb.copy_(mean.expand_as(self.new_emb))

    def class_vectors(self, labels: Tensor, t: Tensor) -> Tensor:
        """(N, emb_dim): frozen rows for known labels and the null label, learned vectors for new ones."""
        new = labels >= self.base_classes
        is_null = labels == self.num_classes
        table_rows = torch.where(is_null, self.base_classes, torch.where(new, 0, labels))
        out = self.class_emb(table_rows)
        slot = (t.long() * self.vectors // self.timesteps).clamp(0, self.vectors - 1)
        index = (labels - self.base_classes).clamp(0, self.new_emb.shape[0] - 1)
        learned = self.new_emb[index, slot]
        return torch.where((new & ~is_null)[:, None], learned, out)

    def embed(self, t: Tensor, labels: Tensor | None) -> Tensor:
        emb = self.time_mlp(sinusoidal_embedding(t, self.base_channels))
        if labels is None:
            labels = torch.full_like(t, self.num_classes, dtype=torch.long)
        return emb + self.class_vectors(labels, t)
