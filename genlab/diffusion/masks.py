"""Inpainting masks: float tensors (N, 1, H, W) with 1 = regenerate (white) and 0 = keep (black).

One entry point, :func:`make_masks`, takes a kind name (``center``, ``random_box``, ``strokes``,
``half_left``, ``half_right``, ``half_top``, ``half_bottom``) or the path of a PNG mask or of a folder
of PNG masks. Random kinds draw only from the given ``torch.Generator``, so a seed gives the same
masks. Masks are square (``size`` × ``size``) and built on the CPU.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from genlab.errors import GenlabError

log = logging.getLogger("genlab")


def _uniform(generator: torch.Generator, low: float, high: float, *shape: int) -> Tensor:
    """Uniform draws in [low, high) from ``generator`` (on its device), returned on the CPU."""
    return (low + (high - low) * torch.rand(*shape, generator=generator, device=generator.device)).cpu()


def _check_share(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise GenlabError(f"{name}={value} must be a share of the image side in (0, 1] (0.5 = half the side).")
    return float(value)


def _check_range(name: str, value: Any, share: bool) -> tuple[float, float]:
    """A (low, high) pair with low ≤ high; shares of the side must lie in (0, 1], counts must be ≥ 1."""
    if not isinstance(value, Sequence) or len(value) != 2:
        raise GenlabError(f"{name}={value} must be a pair [low, high].")
    if share:
        low, high = (_check_share(name, v) for v in value)
    elif any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
        raise GenlabError(f"{name}={value} must be a pair of integers ≥ 1.")
    else:
        low, high = value
    if low > high:
        raise GenlabError(f"{name}={value} must be a pair [low, high] with low ≤ high.")
    return low, high


def _boxes(size: int, top: Tensor, left: Tensor, height: Tensor, width: Tensor) -> Tensor:
    """Masks that are 1 on rows top..top+height−1 and columns left..left+width−1 of each image."""
    index = torch.arange(size)
    rows = (index >= top[:, None]) & (index < (top + height)[:, None])
    cols = (index >= left[:, None]) & (index < (left + width)[:, None])
    return (rows[:, :, None] & cols[:, None, :]).float().unsqueeze(1)


def center(n: int, size: int, mask_size: float = 0.5) -> Tensor:
    """A centred square box whose side is ``mask_size`` of the image side (rounded, at least 1 pixel)."""
    side = max(1, round(_check_share("mask_size", mask_size) * size))
    start = torch.full((n,), (size - side) // 2)
    return _boxes(size, start, start, torch.full((n,), side), torch.full((n,), side))


def random_box(n: int, size: int, generator: torch.Generator, size_range: Sequence[float] = (0.25, 0.5)) -> Tensor:
    """One box per image; its height and width are drawn independently and uniformly in ``size_range``
    (shares of the side, rounded, at least 1 pixel) and its position uniformly among those inside the image."""
    low, high = _check_range("size_range", size_range, share=True)
    extent = (_uniform(generator, low, high, 2, n) * size).round().long().clamp(1, size)
    corner = (_uniform(generator, 0, 1, 2, n) * (size - extent + 1)).long()
    return _boxes(size, corner[0], corner[1], extent[0], extent[1])


def strokes(
    n: int,
    size: int,
    generator: torch.Generator,
    count: Sequence[int] = (2, 4),
    vertices: Sequence[int] = (2, 5),
    width: Sequence[float] = (0.1, 0.25),
    length: Sequence[float] = (0.15, 0.4),
) -> Tensor:
    """Free-form brush strokes: per image, ``count`` strokes (an integer drawn uniformly in the pair, inclusive);
    each a polyline of ``vertices`` points (likewise) starting at a uniform point, each next point at a uniform
    angle and a distance drawn in ``length`` (shares of the side), clamped into the image; each stroke has one
    brush ``width`` drawn in the pair (shares of the side). A pixel is 1 when its centre lies within half the
    width of a segment (round caps; the brush radius is at least 0.75 px, so every stroke marks pixels).
    """
    count_lo, count_hi = _check_range("count", count, share=False)
    vert_lo, vert_hi = _check_range("vertices", vertices, share=False)
    width_lo, width_hi = _check_range("width", width, share=True)
    len_lo, len_hi = _check_range("length", length, share=True)
    grid = (torch.arange(size, dtype=torch.float32) + 0.5).expand(size, size)
    pixels = torch.stack([grid.T, grid], -1)  # (H, W, 2): (row, col) of each pixel centre
    masks = torch.zeros(n, 1, size, size)
    for i in range(n):
        n_strokes = int(_uniform(generator, count_lo, count_hi + 1, 1).floor().clamp(max=count_hi))
        for _ in range(n_strokes):
            n_vert = int(_uniform(generator, vert_lo, vert_hi + 1, 1).floor().clamp(max=vert_hi))
            radius = max(0.75, float(_uniform(generator, width_lo, width_hi, 1)) * size / 2)
            angles = _uniform(generator, 0, 2 * math.pi, n_vert - 1)
            steps = _uniform(generator, len_lo, len_hi, n_vert - 1) * size
            points = [_uniform(generator, 0.5, size - 0.5, 2)]
            for angle, step in zip(angles, steps, strict=True):
                move = step * torch.stack([torch.sin(angle), torch.cos(angle)])
                points.append((points[-1] + move).clamp(0.5, size - 0.5))
            masks[i, 0] = torch.maximum(masks[i, 0], _polyline(pixels, torch.stack(points), radius))
    return masks


def _polyline(pixels: Tensor, points: Tensor, radius: float) -> Tensor:
    """1 where a pixel centre is within ``radius`` of the polyline through ``points`` (K, 2), else 0."""
    if len(points) == 1:
        points = points.repeat(2, 1)
    a, b = points[:-1], points[1:]  # segments (S, 2)
    ab = b - a
    ap = pixels[:, :, None, :] - a  # (H, W, S, 2)
    along = ((ap * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    distance = (ap - along[..., None] * ab).norm(dim=-1).amin(-1)
    return (distance <= radius).float()


def half(n: int, size: int, side: str) -> Tensor:
    """Half of the image to regenerate: ``left``/``top`` is the first ⌊size/2⌋ columns/rows, ``right``/``bottom``
    the last ⌈size/2⌉ (together they cover the image exactly once)."""
    cut = size // 2
    full = torch.full((n,), size)
    zero, cut_t, rest = torch.zeros(n, dtype=torch.long), torch.full((n,), cut), torch.full((n,), size - cut)
    top, left, height, width = {
        "left": (zero, zero, full, cut_t),
        "right": (zero, cut_t, full, rest),
        "top": (zero, zero, cut_t, full),
        "bottom": (cut_t, zero, rest, full),
    }[side]
    return _boxes(size, top, left, height, width)


def from_file(path: str | Path, size: int) -> Tensor:
    """A PNG mask (white = regenerate) as a (1, 1, size, size) mask.

    The file is read as greyscale (PIL mode ``L``), resized to ``size`` × ``size`` with nearest-neighbour
    sampling (a logged note says so), then thresholded: values ≥ 128 are 1. A mask that is not square is
    refused, since stretching it would move the region away from where it was drawn on its image.
    """
    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"mask={path}: no such file. Give a PNG mask (white = regenerate) or a mask kind.")
    try:
        with Image.open(path) as image:
            grey = image.convert("L")
    except (UnidentifiedImageError, OSError) as error:
        raise GenlabError(f"mask={path} is not a readable image ({error}); give a PNG, white = regenerate.") from None
    width, height = grey.size
    if width != height:
        raise GenlabError(
            f"mask={path} is {width}×{height} pixels, not square; the model's images are {size}×{size}. Crop or pad "
            f"the mask to a square the same way as its image, then try again."
        )
    if width != size:
        log.info("mask %s is %d×%d: resized to %d×%d (nearest, then threshold at 128)", path, width, height, size, size)
        grey = grey.resize((size, size), Image.Resampling.NEAREST)
    values = torch.frombuffer(bytearray(grey.tobytes()), dtype=torch.uint8).reshape(1, 1, size, size)
    return (values >= 128).float()


def from_folder(folder: str | Path, image_paths: Sequence[str | Path], size: int) -> Tensor:
    """One mask per input image: ``folder/<image stem>.png`` for each path of ``image_paths``, in order."""
    folder = Path(folder)
    missing = [Path(p).name for p in image_paths if not (folder / f"{Path(p).stem}.png").is_file()]
    if missing:
        raise GenlabError(
            f"mask={folder} has no mask for {len(missing)} input image(s), e.g. {missing[0]} (expected "
            f"{folder / (Path(missing[0]).stem + '.png')}): a folder of masks needs one PNG per input image, "
            f"with the image's file name and the extension .png."
        )
    return torch.cat([from_file(folder / f"{Path(p).stem}.png", size) for p in image_paths])


def _half(side: str) -> Callable[..., Tensor]:
    def make(n: int, size: int) -> Tensor:
        return half(n, size, side)

    return make


KINDS: dict[str, Callable[..., Tensor]] = {
    "center": center,
    "random_box": random_box,
    "strokes": strokes,
    **{f"half_{side}": _half(side) for side in ("left", "right", "top", "bottom")},
}


def make_masks(
    kind: str,
    n: int,
    size: int,
    generator: torch.Generator,
    mask_size: float = 0.5,
    paths: Sequence[str | Path] | None = None,
    **options: Any,
) -> Tensor:
    """``n`` masks (n, 1, size, size) of a kind, or read from a PNG file or a folder of PNGs.

    Args:
        kind: a name of :data:`KINDS`, or the path of a PNG (the same mask for every image) or of a folder
            of PNGs paired with ``paths`` by file name (then ``n`` must equal ``len(paths)``).
        generator: the only source of randomness (random kinds).
        mask_size: side of the ``center`` box as a share of the image side, in (0, 1].
        paths: the input images' paths, for a folder of masks.
        options: further options of the kind's function (``random_box``: ``size_range``; ``strokes``: ``count``,
            ``vertices``, ``width``, ``length``); an option the kind does not take is refused by name.
    """
    _check_share("mask_size", mask_size)
    if kind in KINDS:
        function = KINDS[kind]
        accepted = [p for p in inspect.signature(function).parameters if p not in ("n", "size", "generator")]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            takes = ", ".join(accepted) if accepted else "no options"
            raise GenlabError(f"{unknown[0]}={options[unknown[0]]} is not an option of mask={kind} (it takes {takes}).")
        if "mask_size" in accepted:
            options["mask_size"] = mask_size
        if "generator" in inspect.signature(function).parameters:
            options["generator"] = generator
        return function(n=n, size=size, **options)
    path = Path(kind)
    if path.suffix.lower() != ".png" and not path.exists():
        raise GenlabError(
            f"mask={kind} is neither a mask kind nor an existing file or folder: choose one of {', '.join(KINDS)}, "
            f"or give a PNG mask (white = regenerate) or a folder of PNG masks named like the input images."
        )
    if options:
        raise GenlabError(f"mask={kind} is a file or folder: options such as {next(iter(options))} do not apply.")
    if path.is_dir():
        if paths is None or len(paths) != n:
            got = "no input paths" if paths is None else f"{len(paths)} input paths"
            raise GenlabError(f"mask={kind} is a folder of masks: it needs the {n} input images' paths, got {got}.")
        return from_folder(path, paths, size)
    return from_file(path, size).expand(n, -1, -1, -1).clone()


def mask_coverage(mask: Tensor) -> Tensor:
    """Share of each image's pixels to regenerate (N,), in [0, 1]."""
    return mask.flatten(1).float().mean(1)


def degenerate_masks(mask: Tensor) -> str | None:
    """None when every mask has pixels to keep and to regenerate; otherwise a sentence naming the images
    whose mask is all black (nothing to regenerate: inpainting returns the input) or all white (nothing
    kept: the same as sampling from scratch), for the caller to warn or refuse with."""
    coverage = mask_coverage(mask)
    parts = []
    for indices, what in (
        ((coverage == 0).nonzero().flatten().tolist(), "all black: nothing to regenerate, the input comes back"),
        ((coverage == 1).nonzero().flatten().tolist(), "all white: nothing is kept, the same as sampling from scratch"),
    ):
        if indices:
            shown = ", ".join(map(str, indices[:5])) + (", ..." if len(indices) > 5 else "")
            parts.append(f"{len(indices)} of {len(coverage)} masks (images {shown}) are {what}")
    return "; ".join(parts) + "." if parts else None
