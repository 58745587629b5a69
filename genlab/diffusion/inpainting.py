"""RePaint on a trained diffusion model, through the :class:`~genlab.capabilities.Denoises` capability only.

What the run API (``Run.inpaint``), the inpainting pool of ``augment=inpaint`` and the diffusion visualiser
share: the model's ``denoiser`` (labels, classifier-free guidance), ``resolve_sampler`` (``ddpm``/``ddim`` and
their options) and ``schedule``, with :class:`~genlab.diffusion.repaint.RePaint` walking the jumps. Images go
``batch_size`` at a time and every network evaluation advances an open progress bar (:mod:`genlab.progress`).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from genlab import progress
from genlab.capabilities import Denoises
from genlab.diffusion.masks import degenerate_masks
from genlab.diffusion.repaint import RePaint
from genlab.diffusion.samplers import EpsFn, Sampler
from genlab.errors import GenlabError

log = logging.getLogger("genlab")

# RePaint's j and r. The paper's r = 10 (ten walks over every resampled stretch) costs about ten times the
# plain sampler; it is the default on a GPU. On a CPU the default is r = 3: on digits at 16 px (DDIM-50,
# j = 10) it already gives most of the gain of r = 10 in masked-region PSNR and class consistency at a third
# of the cost (docs/diffusion.md, "Inpainting").
DEFAULT_JUMP = 10
GPU_RESAMPLE = 10
CPU_RESAMPLE = 3


def default_resample(device: torch.device) -> int:
    """RePaint's r when none is given: 10 on a GPU, 3 on a CPU."""
    return GPU_RESAMPLE if device.type == "cuda" else CPU_RESAMPLE


def check_labels(model: Denoises, labels: Tensor | None, n: int) -> Tensor | None:
    """``labels`` (n,) as a long tensor when they fit the model, else a GenlabError naming ``label``."""
    if labels is None:
        return None
    if model.num_classes == 0:
        raise GenlabError(
            "labels were given for inpainting, but this diffusion model is unconditional: drop label=, or inpaint "
            "with a conditional run (model=cddpm), whose fill follows the label."
        )
    labels = torch.as_tensor(labels).flatten().long()
    if len(labels) != n:
        raise GenlabError(f"inpainting got {len(labels)} labels for {n} images: give one label per image.")
    outside = labels[(labels < 0) | (labels >= model.num_classes)]
    if len(outside):
        raise GenlabError(
            f"label={int(outside[0])} is out of range: this model knows classes 0..{model.num_classes - 1}."
        )
    return labels


def inpaint_nfe(model: Denoises, sampler: Sampler, repaint: RePaint, labels: Tensor | None, guidance: Any) -> int:
    """Network evaluations per inpainted image: RePaint's reverse steps, doubled by classifier-free guidance."""
    timesteps = model.schedule.timesteps
    guided = model.nfe(sampler, labels, guidance) // sampler.nfe(timesteps)
    return repaint.nfe(sampler, timesteps) * guided


def plan(
    model: Denoises,
    labels: Tensor | None = None,
    resample: int | None = None,
    jump: int | None = None,
    guidance: float | None = None,
    sampler: str | Sampler | None = None,
    **sampler_options: Any,
) -> tuple[RePaint, Sampler, int]:
    """RePaint's settings, the one-step sampler (``ddpm``/``ddim``, default: the run's, with ``sampler_options``)
    and the network evaluations per image, all checked before any work: options that do not fit are refused.

    r defaults to :func:`default_resample` of the model's device; j to 10, or to half the sampler's steps when
    it has 10 or fewer (a jump must be shorter than the walk).
    """
    device = model.schedule.betas.device
    chosen = model.resolve_sampler(sampler, **sampler_options)
    if jump is None:
        steps = chosen.nfe(model.schedule.timesteps)
        jump = DEFAULT_JUMP if steps > DEFAULT_JUMP else max(1, steps // 2)
    repaint = RePaint(default_resample(device) if resample is None else resample, jump)
    return repaint, chosen, inpaint_nfe(model, chosen, repaint, labels, guidance)


@torch.no_grad()
def inpaint(
    model: Denoises,
    images: Tensor,
    mask: Tensor,
    labels: Tensor | None = None,
    generator: torch.Generator | None = None,
    resample: int | None = None,
    jump: int | None = None,
    guidance: float | None = None,
    batch_size: int = 256,
    ema: bool | None = None,
    **sampler_options: Any,
) -> Tensor:
    """Fill ``images`` (N, C, H, W) in [-1, 1] where ``mask`` (N or 1, 1, H, W) is 1 and keep the rest exactly.

    Args:
        model: a diffusion model (its EMA denoiser samples; the live one with ``ema=False``).
        labels: one class per image, guiding a conditional model (None: the null class).
        generator: every random draw (a seed gives the same images).
        resample, jump, guidance, sampler_options: as :func:`plan` (``sampler=ddpm|ddim`` and its options;
            multistep samplers are refused: they do not compose with RePaint's jumps).

    Returns the inpainted images on the model's device; the regenerated region is clipped to [-1, 1].
    """
    if tuple(images.shape[1:]) != tuple(model.image_shape):
        raise GenlabError(
            f"inpainting inputs have shape {tuple(images.shape[1:])}, but this model makes images of shape "
            f"{tuple(model.image_shape)} (channels, height, width)."
        )
    if mask.ndim != 4 or mask.shape[0] not in (1, len(images)):
        raise GenlabError(
            f"inpainting {len(images)} images needs one mask or one each, of shape (N or 1, 1, H, W); got a mask "
            f"of shape {tuple(mask.shape)}."
        )
    labels = check_labels(model, labels, len(images))
    repaint, chosen, nfe = plan(model, labels, resample, jump, guidance, **sampler_options)
    log.info(
        "inpainting %d images: RePaint r=%d, j=%d on sampler=%s (%s): %d network evaluations per image",
        len(images),
        repaint.resample,
        repaint.jump,
        chosen.name,
        ", ".join(f"{k}={v}" for k, v in chosen.options().items() if k != "sampler"),
        nfe,
    )
    note = degenerate_masks(mask)
    if note is not None:
        log.warning("inpainting: %s", note)
    device = model.schedule.betas.device
    net = model.sampling_network(ema)
    calls = repaint.nfe(chosen, model.schedule.timesteps)  # of eps_fn per batch (a guided call is one)
    out = []
    for first in range(0, len(images), batch_size):
        part = slice(first, min(len(images), first + batch_size))
        chunk, count = images[part].to(device), part.stop - part.start
        regenerate = (mask if mask.shape[0] == 1 else mask[part]).to(device)
        eps_fn = model.denoiser(None if labels is None else labels[part].to(device), guidance, net)

        def reporting(x: Tensor, t: Tensor, eps_fn: EpsFn = eps_fn, share: float = count / calls) -> Tensor:
            progress.advance(share)
            return eps_fn(x, t)

        with progress.part(count):
            filled = repaint.inpaint(chosen, reporting, model.schedule, chunk, regenerate, generator)
        out.append(torch.where(regenerate == 1, filled.clamp(-1, 1), chunk))
    return torch.cat(out)
