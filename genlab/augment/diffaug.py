"""DiffAugment (Zhao et al., 2020): differentiable augmentations applied to real AND fake images.

Semantics of the authors' ``DiffAugment_pytorch.py`` (mit-han-lab/data-efficient-gans), written
here in plain torch (kornia's translations interpolate; these are whole-pixel shifts):

- ``color``: brightness ``x + b``, saturation ``m_c + f·(x − m_c)`` (``m_c`` = channel mean per
  pixel), contrast ``m + f·(x − m)`` (``m`` = mean of the image), in that order, one draw per image:
  ``b ~ U(−B, B)``, ``f ~ U(1 − S, 1 + S)``, ``f ~ U(1 − C, 1 + C)``; the reference's values are
  B = 0.5, S = 1, C = 0.5. The reference applies them to [−1, 1] images, as genlab does, so the
  strengths need no rescaling (saturation and contrast are scale-free; the brightness offset ±0.5
  is in [−1, 1] units, ±0.25 of a [0, 1] image). No clamping. Saturation is skipped for
  1-channel images, where it is the identity anyway.
- ``translation``: each image shifted by whole pixels ``(dy, dx)``, each uniform in
  ``[−s, s]`` with ``s = int(side·translation_ratio + 0.5)``; ``out[i, j] = x[i + dy, j + dx]``,
  0 outside the image.
- ``cutout``: a square of ``int(side·cutout_ratio + 0.5)`` pixels, its centre uniform over the
  image as in the reference (so it may be clipped by the border), set to 0.

"0" (translation padding, cutout) is the reference's value: mid-grey on genlab's [−1, 1] images.
With the default strengths, ``p=1`` and the same random state, the output equals the reference's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from genlab.errors import GenlabError

OPTION = "model.diffaug"
POLICIES = {"color": ("brightness", "saturation", "contrast"), "translation": ("translation",), "cutout": ("cutout",)}
# (lowest, highest) accepted value of each strength.
RANGES = {
    "brightness": (0.0, 2.0),
    "saturation": (0.0, 1.0),
    "contrast": (0.0, 1.0),
    "translation_ratio": (0.0, 1.0),
    "cutout_ratio": (0.0, 1.0),
}


@dataclass(frozen=True)
class DiffAugmentParams:
    """The random draws of one call, shared by every tensor of that call.

    ``index`` (M,) lists the augmented images of the batch (None: all N); the other fields hold one
    row per augmented image, None for an operation the policy does not contain.
    """

    index: Tensor | None
    brightness: Tensor | None = None  # (M,) offsets b
    saturation: Tensor | None = None  # (M,) factors f
    contrast: Tensor | None = None  # (M,) factors f
    translation: Tensor | None = None  # (M, 2) long (dy, dx): out[i, j] = x[i + dy, j + dx]
    cutout: Tensor | None = None  # (M, 2) long (top, left) of the square; may be negative


def parse_policy(policy: str | Sequence[str]) -> tuple[str, ...]:
    """``"color,translation"`` or ``["color", "translation"]`` → ``("color", "translation")``."""
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [str(name).strip() for name in names]
    choices = ", ".join(POLICIES)
    unknown = [name for name in names if name not in POLICIES]
    if unknown or not names:
        raise GenlabError(
            f"{OPTION}={policy!r}: unknown DiffAugment policy {unknown or '(empty)'}; the choices are {choices}, "
            f"combined with commas (e.g. {OPTION}=translation,cutout); set {OPTION}=null to turn it off."
        )
    if len(set(names)) != len(names):
        raise GenlabError(f"{OPTION}={policy!r} names a policy twice; each of {choices} may appear once.")
    return tuple(names)


def _in_range(name: str, value: float, low: float, high: float) -> float:
    if not low <= value <= high:
        raise GenlabError(f"{OPTION}_{name}={value} is out of range: it must lie in [{low}, {high}].")
    return float(value)


def _shift(side: int, ratio: float) -> int:
    return int(side * ratio + 0.5)


class DiffAugment:
    """Callable DiffAugment: ``aug(fake)`` or ``aug(input, target)`` (the same draw for every tensor).

    Args:
        policy: ``"color,translation,cutout"`` or a list of those names, applied in that order.
        translation_ratio: largest shift as a share of the image side (reference: 1/8).
        cutout_ratio: side of the cutout square as a share of the image side (reference: 1/2).
        brightness, saturation, contrast: strengths B, S, C of the ``color`` policy (module doc).
        p: probability that an image is augmented at all (mutable, e.g. by an ADA controller).
    """

    def __init__(
        self,
        policy: str | Sequence[str] = "color,translation,cutout",
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
        brightness: float = 0.5,
        saturation: float = 1.0,
        contrast: float = 0.5,
        p: float = 1.0,
    ) -> None:
        self.policy = parse_policy(policy)
        self.ops = tuple(op for name in self.policy for op in POLICIES[name])
        self.translation_ratio = _in_range("translation_ratio", translation_ratio, *RANGES["translation_ratio"])
        self.cutout_ratio = _in_range("cutout_ratio", cutout_ratio, *RANGES["cutout_ratio"])
        self.brightness = _in_range("brightness", brightness, *RANGES["brightness"])
        self.saturation = _in_range("saturation", saturation, *RANGES["saturation"])
        self.contrast = _in_range("contrast", contrast, *RANGES["contrast"])
        self.p = p

    @property
    def p(self) -> float:
        """Probability that an image is augmented, in [0, 1]."""
        return self._p

    @p.setter
    def p(self, value: float) -> None:
        self._p = _in_range("p", value, 0.0, 1.0)

    def __repr__(self) -> str:
        return f"DiffAugment(policy={','.join(self.policy)!r}, p={self.p:g})"

    def sample(
        self,
        n: int,
        height: int,
        width: int,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> DiffAugmentParams:
        """Draw the parameters for a batch of ``n`` images of ``height``×``width`` (float32 values)."""

        def uniform(m: int, strength: float, centre: float) -> Tensor:  # U(centre − strength, centre + strength)
            r = torch.rand(m, generator=generator, device=device)
            return r * (2 * strength) + (centre - strength)

        def integers(m: int, low: int, high: int) -> Tensor:  # uniform over [low, high)
            return torch.randint(low, high, (m,), generator=generator, device=device)

        index = None
        if self.p < 1:
            index = (torch.rand(n, generator=generator, device=device) < self.p).nonzero().flatten()
        m = n if index is None else len(index)
        draws: dict[str, Tensor] = {}
        for op in self.ops:
            if op == "brightness":
                draws[op] = uniform(m, self.brightness, 0.0)
            elif op in ("saturation", "contrast"):
                draws[op] = uniform(m, getattr(self, op), 1.0)
            elif op == "translation":
                sy, sx = _shift(height, self.translation_ratio), _shift(width, self.translation_ratio)
                draws[op] = torch.stack([integers(m, -sy, sy + 1), integers(m, -sx, sx + 1)], dim=1)
            else:  # cutout: centre uniform over [0, side + 1 − size % 2), as in the reference
                ch, cw = _shift(height, self.cutout_ratio), _shift(width, self.cutout_ratio)
                top = integers(m, 0, height + 1 - ch % 2) - ch // 2
                draws[op] = torch.stack([top, integers(m, 0, width + 1 - cw % 2) - cw // 2], dim=1)
        return DiffAugmentParams(index=index, **draws)

    def apply(self, x: Tensor, params: DiffAugmentParams) -> Tensor:
        """Augment ``x`` (N, C, H, W) with the drawn ``params``; images not in ``params.index`` pass unchanged."""
        sub = x if params.index is None else x.index_select(0, params.index)
        if len(sub) == 0:
            return x
        for op in self.ops:
            value = getattr(params, op)
            if op in ("brightness", "saturation", "contrast"):
                value = value.to(x.dtype).view(-1, 1, 1, 1)
            if op == "brightness":
                sub = sub + value
            elif op == "saturation" and sub.shape[1] > 1:
                mean = sub.mean(dim=1, keepdim=True)
                sub = (sub - mean) * value + mean
            elif op == "contrast":
                mean = sub.mean(dim=(1, 2, 3), keepdim=True)
                sub = (sub - mean) * value + mean
            elif op == "translation":
                sub = self._translate(sub, value)
            elif op == "cutout":
                sub = self._cutout(sub, value)
        return sub if params.index is None else x.index_copy(0, params.index, sub)

    def _translate(self, x: Tensor, shift: Tensor) -> Tensor:
        """Whole-pixel shift with zero padding: one gather from the zero-padded batch."""
        m, c, h, w = x.shape
        sy, sx = _shift(h, self.translation_ratio), _shift(w, self.translation_ratio)
        padded = torch.nn.functional.pad(x, (sx, sx, sy, sy)).flatten(2)  # (M, C, (H + 2sy)·(W + 2sx))
        rows = torch.arange(h, device=x.device) + shift[:, :1] + sy  # (M, H) rows of the padded image
        cols = torch.arange(w, device=x.device) + shift[:, 1:] + sx  # (M, W)
        index = (rows[:, :, None] * (w + 2 * sx) + cols[:, None, :]).view(m, 1, h * w).expand(m, c, h * w)
        return padded.gather(2, index).view(m, c, h, w)

    def _cutout(self, x: Tensor, corner: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ch, cw = _shift(h, self.cutout_ratio), _shift(w, self.cutout_ratio)
        rows = torch.arange(h, device=x.device) - corner[:, :1]  # (M, H): row offset inside the square
        cols = torch.arange(w, device=x.device) - corner[:, 1:]
        inside = ((rows >= 0) & (rows < ch))[:, :, None] & ((cols >= 0) & (cols < cw))[:, None, :]
        return x * (~inside).to(x.dtype)[:, None]

    def __call__(self, *images: Tensor, generator: torch.Generator | None = None) -> Tensor | tuple[Tensor, ...]:
        """Augment one batch, or several batches (same N, H, W; any channels) with one shared draw.

        ``generator`` (on the images' device) makes the draw reproducible; None uses torch's global RNG.
        """
        if not images:
            raise ValueError("DiffAugment needs at least one image batch")
        n, _, h, w = images[0].shape
        for x in images:
            if x.ndim != 4 or (x.shape[0], *x.shape[2:]) != (n, h, w) or x.device != images[0].device:
                raise ValueError(
                    "DiffAugment: every tensor must be (N, C, H, W) with the same N, H, W and device; got "
                    + ", ".join(f"{tuple(t.shape)} on {t.device}" for t in images)
                )
        if self.p > 0:
            params = self.sample(n, h, w, images[0].device, generator)
            images = tuple(self.apply(x, params) for x in images)
        return images[0] if len(images) == 1 else images
