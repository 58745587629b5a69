"""Scores of inpainted images against their originals: the regenerated region's L1 and PSNR, the known region's
changes, and class consistency (a reference classifier's accuracy against the originals' labels)."""

from __future__ import annotations

import torch
from torch import Tensor

from genlab.errors import GenlabError
from genlab.imaging import to_uint8
from genlab.metrics.features import ClassifierFeatures


def masked_errors(inpainted: Tensor, originals: Tensor, mask: Tensor) -> dict[str, float]:
    """Pixel errors of ``inpainted`` against ``originals`` (both (N, C, H, W) in [-1, 1]; ``mask`` (N, 1, H, W),
    1 = regenerated), on 8-bit images as saved, with pixels in [0, 1].

    ``masked_l1``: mean |x̂ − x| over each image's regenerated pixels (all channels); ``masked_psnr``:
    10 log10(1 / MSE) over the same pixels (MSE floored at 1e-10, i.e. at most 100 dB); both per image, then
    averaged over the images that have regenerated pixels. ``known_pixels_changed``: values outside the mask
    that differ from the original (0 when the known region is kept exactly).
    """
    if inpainted.shape != originals.shape or mask.shape != (len(inpainted), 1, *inpainted.shape[2:]):
        raise GenlabError(
            f"inpainting scores need images and originals of one shape and a mask (N, 1, H, W); got "
            f"{tuple(inpainted.shape)}, {tuple(originals.shape)} and {tuple(mask.shape)}."
        )
    fake = to_uint8(inpainted.cpu()).float() / 255
    real = to_uint8(originals.cpu()).float() / 255
    region = mask.cpu().bool().expand_as(fake)
    count = region.flatten(1).sum(1)
    diff = (fake - real) * region
    has = count > 0
    if not bool(has.any()):
        raise GenlabError("inpainting scores: no mask has a pixel to regenerate (every mask is all black).")
    l1 = diff.abs().flatten(1).sum(1)[has] / count[has]
    mse = diff.square().flatten(1).sum(1)[has] / count[has]
    psnr = 10 * torch.log10(1 / mse.clamp_min(1e-10))
    return {
        "masked_l1": float(l1.mean()),
        "masked_psnr": float(psnr.mean()),
        "known_pixels_changed": int(((fake != real) & ~region).sum()),
    }


@torch.no_grad()
def predicted_classes(classifier: ClassifierFeatures, images: Tensor, batch_size: int = 256) -> Tensor:
    """The reference classifier's predicted class of each image (in [-1, 1]), on the CPU."""
    device = next(classifier.parameters()).device
    parts = [classifier.features_and_logits(chunk.to(device))[1].argmax(1).cpu() for chunk in images.split(batch_size)]
    return torch.cat(parts)
