"""Per-batch versions of the per-sample augmentations, for ``augment.on_device=true``.

torchvision's v2 transforms draw one set of random parameters per call, so calling them on a
batch would flip, crop or jitter every image of the batch alike. The functions here draw the
parameters per image (as the per-sample pipeline does) but apply them to the whole batch at once,
on whatever device the batch lives on (the GPU, after the batch is transferred). Inputs and
outputs are float batches (N, C, H, W) in [0, 1].

Differences from the per-sample pipeline, in distribution only: ColorJitter applies brightness,
contrast and saturation in this fixed order (v2 shuffles the order per image).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms import v2

from genlab.augment.transforms import Cutout, SaltAndPepperNoise
from genlab.errors import GenlabError

BatchFn = Callable[[Tensor], Tensor]
PAD_MODES = {"constant": "constant", "edge": "replicate", "reflect": "reflect"}
LUMA = (0.299, 0.587, 0.114)


def _uniform(n: int, low: float, high: float, device: torch.device) -> Tensor:
    return torch.empty(n, device=device).uniform_(low, high).view(n, 1, 1, 1)


def _apply_mask(x: Tensor, mask: Tensor, out: Tensor) -> Tensor:
    """``out`` for images where ``mask`` (N,) is true, ``x`` elsewhere."""
    return torch.where(mask.view(-1, 1, 1, 1), out, x)


def _gray(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    weights = x.new_tensor(LUMA).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def horizontal_flip(p: float) -> BatchFn:
    return lambda x: _apply_mask(x, torch.rand(len(x), device=x.device) < p, x.flip(-1))


def vertical_flip(p: float) -> BatchFn:
    return lambda x: _apply_mask(x, torch.rand(len(x), device=x.device) < p, x.flip(-2))


def random_crop(t: v2.RandomCrop) -> BatchFn:
    """Pad (constant / edge / reflect), then an independent random crop offset per image."""
    if t.pad_if_needed or t.padding_mode not in PAD_MODES:
        raise _unsupported(t, "pad_if_needed=True or padding_mode='symmetric'")
    left, top, right, bottom = t.padding if t.padding is not None else (0, 0, 0, 0)
    fill = t.fill if isinstance(t.fill, int | float) else 0
    height, width = t.size

    def crop(x: Tensor) -> Tensor:
        n = len(x)
        mode = PAD_MODES[t.padding_mode]
        padded = F.pad(x, (left, right, top, bottom), mode=mode, value=fill if mode == "constant" else None)
        h_room, w_room = padded.shape[-2] - height, padded.shape[-1] - width
        if h_room < 0 or w_room < 0:
            raise GenlabError(f"RandomCrop size {t.size} is larger than the padded image {tuple(padded.shape[-2:])}.")
        tops = torch.randint(0, h_room + 1, (n, 1, 1), device=x.device)
        lefts = torch.randint(0, w_room + 1, (n, 1, 1), device=x.device)
        rows = tops + torch.arange(height, device=x.device).view(1, -1, 1)
        cols = lefts + torch.arange(width, device=x.device).view(1, 1, -1)
        batch = torch.arange(n, device=x.device).view(n, 1, 1)
        return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()

    return crop


def color_jitter(t: v2.ColorJitter) -> BatchFn:
    """Brightness, contrast, saturation with one random factor per image each (hue is not batched)."""
    if t.hue is not None:
        raise _unsupported(t, "hue jitter")

    def jitter(x: Tensor) -> Tensor:
        n = len(x)
        if t.brightness is not None:
            x = (x * _uniform(n, *t.brightness, x.device)).clamp(0, 1)
        if t.contrast is not None:
            mean = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
            f = _uniform(n, *t.contrast, x.device)
            x = (f * x + (1 - f) * mean).clamp(0, 1)
        if t.saturation is not None and x.shape[1] == 3:
            f = _uniform(n, *t.saturation, x.device)
            x = (f * x + (1 - f) * _gray(x)).clamp(0, 1)
        return x

    return jitter


def gaussian_noise(t: v2.GaussianNoise) -> BatchFn:
    def noise(x: Tensor) -> Tensor:
        out = x + torch.randn_like(x) * t.sigma + t.mean
        return out.clamp(0, 1) if t.clip else out

    return noise


def _range(value: float | Sequence[float] | None, symmetric: bool) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return (-float(value), float(value)) if symmetric else (float(value), float(value))
    return float(value[0]), float(value[1])


def affine(degrees: Sequence[float], translate=None, scale=None, fill: float = 0.0) -> BatchFn:
    """Rotation, translation and scaling about the centre, one random draw per image
    (nearest-neighbour sampling and a constant ``fill``, as v2.RandomAffine's defaults)."""
    low, high = _range(degrees, symmetric=True)

    def warp(x: Tensor) -> Tensor:
        n = len(x)
        angle = torch.empty(n, device=x.device).uniform_(low, high) * math.pi / 180
        s = torch.empty(n, device=x.device).uniform_(*scale) if scale is not None else torch.ones(n, device=x.device)
        shift = torch.zeros(n, 2, device=x.device)
        if translate is not None:
            shift[:, 0].uniform_(-translate[0], translate[0])
            shift[:, 1].uniform_(-translate[1], translate[1])
            shift = shift * 2  # fractions of the image size → normalised coordinates ([-1, 1] spans the image)
        cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
        rotation = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
        theta = torch.cat([rotation, -(rotation @ shift.unsqueeze(-1))], dim=2)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        out = F.grid_sample(x - fill, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        return out + fill

    return warp


def salt_and_pepper(t: SaltAndPepperNoise) -> BatchFn:
    def noise(x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        applied = (torch.rand(n, 1, 1, 1, device=x.device) < t.p).expand(n, 1, h, w)
        hit = (torch.rand(n, 1, h, w, device=x.device) < t.amount) & applied
        salt = torch.rand(n, 1, h, w, device=x.device) < t.salt_ratio
        return torch.where(hit & salt, 1.0, torch.where(hit & ~salt, 0.0, x))

    return noise


def cutout(t: Cutout) -> BatchFn:
    def cut(x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        half = t.size // 2
        cy = torch.randint(0, h, (n, 1, 1, 1), device=x.device) - half
        cx = torch.randint(0, w, (n, 1, 1, 1), device=x.device) - half
        rows = torch.arange(h, device=x.device).view(1, 1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, 1, w)
        inside = (rows >= cy) & (rows < cy + t.size) & (cols >= cx) & (cols < cx + t.size)
        inside &= torch.rand(n, 1, 1, 1, device=x.device) < t.p
        return torch.where(inside, t.fill, x)

    return cut


def _unsupported(transform: object, what: str) -> GenlabError:
    return GenlabError(
        f"augment.on_device=true cannot batch {type(transform).__name__} ({what}): set augment.on_device=false "
        f"to run it per sample in the dataset. Batched transforms: {', '.join(SUPPORTED)}."
    )


def batch_transform(transform: object) -> BatchFn:
    """The per-batch, per-image-random version of one per-sample transform; a clear error if there is none."""
    if isinstance(transform, v2.Compose):
        return compose([batch_transform(t) for t in transform.transforms])
    if isinstance(transform, v2.RandomHorizontalFlip):
        return horizontal_flip(transform.p)
    if isinstance(transform, v2.RandomVerticalFlip):
        return vertical_flip(transform.p)
    if isinstance(transform, v2.RandomCrop):
        return random_crop(transform)
    if isinstance(transform, v2.ColorJitter):
        return color_jitter(transform)
    if isinstance(transform, v2.GaussianNoise):
        return gaussian_noise(transform)
    if isinstance(transform, v2.RandomAffine | v2.RandomRotation):
        if isinstance(transform, v2.RandomAffine) and transform.shear is not None:
            raise _unsupported(transform, "shear")
        if (
            str(getattr(transform.interpolation, "value", transform.interpolation)) != "nearest"
            or transform.center is not None
            or getattr(transform, "expand", False)
        ):
            raise _unsupported(transform, "interpolation other than nearest, a custom center or expand=True")
        fill = transform.fill if isinstance(transform.fill, int | float) else 0.0
        translate = getattr(transform, "translate", None)
        scale = getattr(transform, "scale", None)
        return affine(transform.degrees, translate, scale, float(fill))
    if isinstance(transform, SaltAndPepperNoise):
        return salt_and_pepper(transform)
    if isinstance(transform, Cutout):
        return cutout(transform)
    raise _unsupported(transform, "no batched version")


def compose(functions: Sequence[BatchFn]) -> BatchFn:
    def run(x: Tensor) -> Tensor:
        for fn in functions:
            x = fn(x)
        return x

    return run


SUPPORTED = (
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "RandomCrop",
    "ColorJitter (no hue)",
    "GaussianNoise",
    "RandomAffine (no shear)",
    "RandomRotation",
    "SaltAndPepperNoise",
    "Cutout",
)
