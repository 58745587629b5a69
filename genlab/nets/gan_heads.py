"""Discriminator heads: what a GAN discriminator computes from its flattened features.

A discriminator net ends in a trunk that maps an image to features (N, F); the head turns them
into logits. Heads are built by the net with ``head(in_features)`` (a Hydra ``_partial_``).
"""

from __future__ import annotations

from torch import Tensor, nn

from genlab.errors import GenlabError


class RealFakeHead(nn.Module):
    """One real/fake logit per image, (N,).

    With ``num_classes`` > 0 the logit is conditioned on the label by projection
    (Miyato & Koyama, 2018): ``w·h + <embed(y), h>``.
    """

    def __init__(self, in_features: int, num_classes: int = 0) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 1, bias=False)
        self.embed = nn.Embedding(num_classes, in_features) if num_classes > 0 else None
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, features: Tensor, labels: Tensor | None = None) -> Tensor:
        logits = self.linear(features).squeeze(1)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass labels")
            logits = logits + (self.embed(labels) * features).sum(dim=1)
        return logits


class MulticlassHead(nn.Module):
    """K class logits plus one "fake" logit, (N, K + 1): the K+1-way discriminator (Salimans et al., 2016)."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise GenlabError(
                "the multiclass (K+1) discriminator head needs labelled data (data.num_classes > 0); "
                "use model/head=realfake for an unlabelled dataset."
            )
        self.num_classes = num_classes
        self.linear = nn.Linear(in_features, num_classes + 1)

    def forward(self, features: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.linear(features)
