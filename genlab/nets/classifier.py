"""A small CNN classifier: blocks of (conv-BN-ReLU) × 2 + max-pool, global pooling, linear head."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from genlab.errors import GenlabError


class SimpleCNN(nn.Module):
    """CNN classifier whose width is set by ``widths`` (one down-sampling block per entry).

    ``features(x)`` returns the penultimate (pooled) features, ``num_features`` wide, which
    ``features=classifier`` FID uses.

    Args:
        in_channels: image channels.
        num_classes: output logits.
        image_size: input side; must be at least 2 ** len(widths).
        widths: output channels of each block; the image halves after each.
        dropout: dropout before the linear head.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        image_size: int,
        widths: Sequence[int] = (32, 64, 128),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise GenlabError(
                "model=cnn needs a labelled dataset with at least 2 classes; "
                f"this dataset has num_classes={num_classes}."
            )
        if image_size < 2 ** len(widths):
            raise GenlabError(
                f"data.image_size={image_size} is too small for model=cnn with {len(widths)} down-sampling "
                f"blocks (widths={list(widths)}): use image_size >= {2 ** len(widths)} or fewer widths."
            )
        layers: list[nn.Module] = []
        channels = in_channels
        for width in widths:
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = width
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels, num_classes))
        self.num_features = channels

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features (N, num_features)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))
