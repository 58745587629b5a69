"""Feature networks of FID/KID/precision-recall and the one place where images are converted for them.

Both networks take images in [-1, 1] (N, C, H, W), real or generated alike, and quantise them to
8 bits first (what a saved image holds), so real and generated images see the same conversion:

- :class:`InceptionFeatures`: torchmetrics' default FID Inception-v3 (2048-d pool features), uint8
  RGB input (1-channel images repeated to 3), resized inside the network with ``antialias=False``
  (TensorFlow-compatible, paper-comparable numbers).
- :class:`ClassifierFeatures`: the penultimate features of a genlab CNN trained on the same dataset
  and image size (offline, small), whose logits also give the class metrics.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import NoTrainInceptionV3

from genlab.errors import GenlabError
from genlab.imaging import to_uint8, uint8_to_model_range
from genlab.io import safe_torch_load
from genlab.nets.classifier import SimpleCNN

INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILE = INCEPTION_URL.rsplit("/", 1)[1]


def file_digest(path: str | Path, length: int = 16) -> str:
    """The first ``length`` hex digits of a file's SHA-256: the identity of a weights file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


class FeatureNetwork(nn.Module):
    """A frozen feature extractor: ``forward(images in [-1, 1]) → (N, num_features)``.

    ``name`` is the ``features=`` choice; ``identity`` names the exact weights (a file hash), so
    statistics and metrics from different weights are never mixed.
    """

    name: str
    identity: str
    num_features: int


def inception_weights(path: str | None, download: bool = True) -> Path:
    """The Inception-v3 FID weights file: ``path``, else torch hub's cache (downloaded when allowed)."""
    if path:
        weights = Path(str(path)).expanduser()
        if not weights.is_file():
            raise GenlabError(
                f"eval.inception_weights={path} does not exist. Point it at {INCEPTION_FILE} "
                f"(from {INCEPTION_URL}), or use features=classifier, which works offline."
            )
        return weights
    weights = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if weights.is_file():
        return weights
    reason = "eval.download=false"
    if download:
        try:
            weights.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(INCEPTION_URL, str(weights), progress=True)
            return weights
        except Exception as err:
            weights.unlink(missing_ok=True)
            reason = f"download failed: {type(err).__name__}"
    raise GenlabError(
        f"features=inception needs the Inception-v3 FID weights {INCEPTION_FILE}, which are not in {weights.parent} "
        f"({reason}). Download {INCEPTION_URL} by hand and put it in {weights.parent} (torch hub's cache, "
        f"set by TORCH_HOME) or pass eval.inception_weights=PATH; or use features=classifier, which works offline."
    )


def inception_network(settings: Any, device: torch.device) -> InceptionFeatures:
    """The Inception-v3 feature network the ``eval`` settings point at (``inception_weights``, ``download``)."""
    weights = inception_weights(settings.get("inception_weights"), bool(settings.get("download", True)))
    return InceptionFeatures(weights).to(device)


class InceptionFeatures(FeatureNetwork):
    """torchmetrics' FID Inception-v3 (2048-d), loaded from a local weights file.

    Args:
        weights: path of the state_dict file (checked to hold plain tensors before loading).
    """

    name = "inception"

    def __init__(self, weights: Path) -> None:
        super().__init__()

        state = safe_torch_load(weights)
        if not isinstance(state, dict) or not any(str(k).startswith("Mixed_7c") for k in state):
            raise GenlabError(f"'{weights}' is not an Inception-v3 FID state_dict ({INCEPTION_FILE}).")
        try:
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=["2048"],
                feature_extractor_weights_path=str(weights),
                antialias=False,
            )
        except RuntimeError as err:
            raise GenlabError(f"'{weights}' does not fit Inception-v3 ({str(err).splitlines()[0]}).") from None
        self.identity = f"inception-v3-compat:{file_digest(weights)}"
        self.num_features = 2048

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        pixels = to_uint8(images)
        if pixels.shape[1] == 1:
            pixels = pixels.repeat(1, 3, 1, 1)
        return self.net(pixels)


class ClassifierFeatures(FeatureNetwork):
    """Penultimate features and logits of a genlab CNN (:class:`SimpleCNN`).

    Args:
        net: the trained classifier network.
        identity: ``classifier:<checkpoint hash>``.
        info: what it was trained on: ``data``, ``image_size``, ``channels``, ``num_classes`` (+ ``test_acc``).
    """

    name = "classifier"

    def __init__(self, net: SimpleCNN, identity: str, info: dict) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.identity = identity
        self.info = info
        self.num_features = net.num_features

    def train(self, mode: bool = True) -> ClassifierFeatures:
        """Always in evaluation mode (batch norm statistics and dropout are frozen)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        return self.net.features(uint8_to_model_range(to_uint8(images)))

    @torch.no_grad()
    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Both outputs from one pass through the body."""
        features = self(images)
        return features, self.net.head(features)
