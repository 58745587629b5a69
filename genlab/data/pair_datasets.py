"""Datasets of image pairs (A, B) for image-to-image translation: in memory, or A|B files.

Both return float images in [-1, 1]: the input A (N, input_channels, S, S) and the target B
(N, channels, S, S) of the same pixels; training pairs get the same random crop and flip on A and B.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from genlab.data.datasets import InMemoryImages, read_image_uint8
from genlab.imaging import to_model_range

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4
LUMA = torch.tensor([0.299, 0.587, 0.114])


@dataclass
class PairSplit:
    """One split of pairs held in memory: uint8 inputs (N, Ca, H, W) and targets (N, Cb, H, W), and the
    pairs' class labels where the source dataset has them (None: unlabelled)."""

    inputs: Tensor
    targets: Tensor
    labels: Tensor | None = None


def sobel_edges(images01: Tensor, threshold: float) -> Tensor:
    """Binary edge maps (N, 1, H, W) in {0, 1} of float images (N, C, H, W) in [0, 1].

    The Sobel gradient magnitude of the luminance (scaled so a black-to-white step gives 1) is
    compared with ``threshold``.
    """
    gray = images01 if images01.shape[1] == 1 else (images01 * LUMA.view(1, 3, 1, 1)).sum(1, keepdim=True)
    padded = F.pad(gray, (1, 1, 1, 1), mode="replicate")
    kernels = torch.stack([SOBEL_X, SOBEL_X.T]).unsqueeze(1)
    gradients = F.conv2d(padded, kernels)
    magnitude = gradients.pow(2).sum(1, keepdim=True).sqrt()
    return (magnitude > threshold).float()


def joint_crop_flip(a: Tensor, b: Tensor, load_size: int, crop_size: int, flip_p: float) -> tuple[Tensor, Tensor]:
    """pix2pix's training transform: resize A and B to ``load_size``, then the same random
    ``crop_size`` crop and the same random horizontal flip on both."""
    a = TF.resize(a, [load_size, load_size], antialias=True)
    b = TF.resize(b, [load_size, load_size], antialias=True)
    top = int(torch.randint(0, load_size - crop_size + 1, ()))
    left = int(torch.randint(0, load_size - crop_size + 1, ()))
    a = a[..., top : top + crop_size, left : left + crop_size]
    b = b[..., top : top + crop_size, left : left + crop_size]
    if flip_p > 0 and float(torch.rand(())) < flip_p:
        a, b = a.flip(-1), b.flip(-1)
    return a, b


class InMemoryPairs(InMemoryImages):
    """Pairs held in memory, indexed with a list of indices: returns a batch ``(A, B)`` in [-1, 1].

    ``hflip_p`` > 0 flips each pair (A and B together) at random: training batches.
    """

    def __init__(self, split: PairSplit, hflip_p: float = 0.0) -> None:
        self.inputs = split.inputs
        self.images = split.targets
        unlabelled = torch.full((len(split.targets),), -1, dtype=torch.long)
        self.labels = unlabelled if split.labels is None else split.labels
        self.transform = None
        self.hflip_p = hflip_p

    def eval_pairs(self, index: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Pairs ``index`` without random transforms, in [-1, 1]."""
        index = torch.as_tensor(index, dtype=torch.long)
        return to_model_range(self.inputs[index].float().div_(255)), to_model_range(
            self.images[index].float().div_(255)
        )

    def __getitem__(self, index: Sequence[int] | Tensor) -> tuple[Tensor, Tensor]:
        a, b = self.eval_pairs(index)
        if self.hflip_p > 0:
            flip = torch.rand(len(a)) < self.hflip_p
            a[flip], b[flip] = a[flip].flip(-1), b[flip].flip(-1)
        return a, b


class PairedFiles(Dataset):
    """One A|B image file per pair (A on the left half, B on the right, unless ``direction=BtoA``).

    Training (``train=True``): resize to ``load_size``, joint random crop to ``image_size`` and
    joint flip; otherwise a plain resize to ``image_size``.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        image_size: int,
        load_size: int,
        input_channels: int,
        channels: int,
        direction: str = "AtoB",
        train: bool = False,
        hflip_p: float = 0.5,
    ) -> None:
        self.paths = list(paths)
        self.labels = torch.full((len(self.paths),), -1, dtype=torch.long)
        self.image_size = image_size
        self.load_size = load_size
        self.input_channels = input_channels
        self.channels = channels
        self.direction = direction
        self.train = train
        self.hflip_p = hflip_p

    def __len__(self) -> int:
        return len(self.paths)

    def load_pair_uint8(self, i: int) -> tuple[Tensor, Tensor]:
        """Pair i at full resolution, as uint8 (C, H, W) halves in the configured direction."""
        ab = read_image_uint8(self.paths[i], "RGB")
        half = ab.shape[-1] // 2
        left, right = ab[..., :half], ab[..., half : 2 * half]
        a, b = (left, right) if self.direction == "AtoB" else (right, left)
        return self._channels(a, self.input_channels), self._channels(b, self.channels)

    @staticmethod
    def _channels(image: Tensor, channels: int) -> Tensor:
        return TF.rgb_to_grayscale(image) if channels == 1 else image

    def load_uint8(self, i: int) -> Tensor:
        """The target B of pair i at ``image_size``, as uint8 (C, H, W)."""
        return TF.resize(self.load_pair_uint8(i)[1], [self.image_size, self.image_size], antialias=True)

    def eval_pairs(self, index: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Pairs ``index`` resized to ``image_size`` without random transforms, in [-1, 1]."""
        pairs = [self._resized(i) for i in index]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def _resized(self, i: int) -> tuple[Tensor, Tensor]:
        size = [self.image_size, self.image_size]
        a, b = (TF.resize(x, size, antialias=True) for x in self.load_pair_uint8(i))
        return to_model_range(a.float().div_(255)), to_model_range(b.float().div_(255))

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        if not self.train:
            return self._resized(i)
        a, b = joint_crop_flip(*self.load_pair_uint8(i), self.load_size, self.image_size, self.hflip_p)
        return to_model_range(a.float().div_(255)), to_model_range(b.float().div_(255))
