"""``genlab sample run=DIFFUSION_RUN mask=KIND|PNG|FOLDER input=PATH|split=S``: RePaint inpainting.

The grid has one row per input: the original, the masked input (the region to regenerate painted red), then
``variations`` inpainted images. ``format=png`` adds one PNG per inpainted image (``images/<input>_v<k>.png``),
``format=npz`` the arrays ``inputs``, ``masks`` (uint8, 1 = regenerated), ``images`` (n, k, C, H, W) and the
labels. With ``split=`` the originals are known, and ``metrics.json`` gets the regenerated region's L1 and PSNR
against them and the class consistency: the reference classifier's accuracy on the inpainted images against the
originals' labels (with ``label=`` also ``label_acc``, against the requested label).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from genlab.api import Run
from genlab.capabilities import Denoises
from genlab.data.user_images import input_images, load_user_images
from genlab.diffusion.inpainting import plan
from genlab.diffusion.masks import make_masks, mask_coverage
from genlab.errors import GenlabError
from genlab.imaging import comparison_grid, save_npz, save_picture, save_pngs
from genlab.io import write_json
from genlab.metrics.inpainting import masked_errors, predicted_classes
from genlab.metrics.scores import class_accuracy
from genlab.scoring.reference import reference_classifier

log = logging.getLogger("genlab")

INPAINT_KEYS = ("mask", "mask_size", "resample", "jump")
DEFAULT_VARIATIONS = 4
DEFAULT_MASK_SIZE = 0.5
MASK_COLOUR = (1.0, -1.0, -1.0)  # red, in [-1, 1]


def asks_inpainting(cfg: DictConfig) -> bool:
    """Whether the command names any inpainting option (then this module handles it, or refuses it)."""
    return any(cfg.get(key) is not None for key in INPAINT_KEYS)


def _check(run: Run, cfg: DictConfig) -> int:
    """Refuse what does not fit inpainting; return the variations per input."""
    given = next(key for key in INPAINT_KEYS if cfg.get(key) is not None)
    if not isinstance(run.model, Denoises):
        raise GenlabError(
            f"{given}={cfg[given]} asks for inpainting, which model={run.name} cannot do: RePaint needs a diffusion "
            "run (model=ddpm, cddpm or ddpm_large)."
        )
    if cfg.mask is None:
        raise GenlabError(f"{given}={cfg[given]} applies to inpainting: add mask=center (or another mask kind).")
    if cfg.strength is not None:
        raise GenlabError(
            f"strength={cfg.strength} is SDEdit's option; inpainting (mask=) regenerates the masked region from pure "
            "noise and keeps the rest: drop strength=, or drop mask= for SDEdit."
        )
    if cfg.interpolate:
        raise GenlabError("interpolate=true does not apply to inpainting (mask=): drop one of them.")
    if not cfg.input and not cfg.split:
        raise GenlabError(
            f"mask={cfg.mask} inpaints given images: add input=PATH (an image or a folder) or split=test."
        )
    if cfg.mask_size is not None and cfg.mask != "center":
        raise GenlabError(f"mask_size={cfg.mask_size} sets the side of mask=center's box; mask={cfg.mask} has none.")
    variations = DEFAULT_VARIATIONS if cfg.variations is None else cfg.variations
    if isinstance(variations, bool) or not isinstance(variations, int) or variations < 1:
        raise GenlabError(f"variations={variations} must be an integer ≥ 1 (inpainted variations per input image).")
    return variations


def _masks(cfg: DictConfig, n: int, size: int, paths: list[Path] | None) -> Tensor:
    """One mask per input (random kinds seeded by ``seed``); all-black masks are refused."""
    kind = str(cfg.mask)
    if paths is None and Path(kind).is_dir():
        raise GenlabError(
            f"mask={kind} is a folder of masks, paired with input= images by file name; with split= give a mask "
            "kind or one PNG mask."
        )
    size_share = DEFAULT_MASK_SIZE if cfg.mask_size is None else cfg.mask_size
    masks = make_masks(kind, n, size, torch.Generator().manual_seed(int(cfg.seed)), size_share, paths)
    if bool((mask_coverage(masks) == 0).all()):
        raise GenlabError(
            f"mask={kind} is all black: nothing to regenerate (white = regenerate, black = keep), so inpainting "
            "would return the inputs unchanged. Invert the mask, or choose a mask kind such as mask=center."
        )
    return masks


def masked_view(images: Tensor, masks: Tensor) -> Tensor:
    """The inputs as the model sees them: RGB, with the region to regenerate painted :data:`MASK_COLOUR`."""
    rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    colour = torch.tensor(MASK_COLOUR).view(1, 3, 1, 1)
    return torch.where(masks.bool(), colour, rgb)


def inpaintings(run: Run, cfg: DictConfig, options: dict[str, Any], out: Path) -> list[Path]:
    """Inpaint ``input=`` or ``split=`` images: grid, PNGs or npz, and scores against a split's originals."""
    variations = _check(run, cfg)
    channels, size = run.model.image_shape[0], run.model.image_shape[1]
    if cfg.input:
        files = input_images(str(cfg.input))[: cfg.n]
        log.info("input images are converted to %d channel(s) and resized to %d×%d", channels, size, size)
        images, truth, names = load_user_images(files, channels, size), None, [path.stem for path in files]
    else:
        images, truth = run.split_images(str(cfg.split), cfg.n)
        files, names = None, [f"{i:05d}" for i in range(len(images))]
    masks = _masks(cfg, len(images), size, files)
    conditional = run.model.num_classes > 0
    guide = run.labels(cfg.label, len(images)) if cfg.label is not None else truth if conditional else None
    settings = {"resample": cfg.resample, "jump": cfg.jump, **options}
    repaint, sampler, nfe = plan(run.model, guide, **settings)
    cond = None if guide is None else guide.repeat_interleave(variations)
    started = time.perf_counter()
    filled = run.inpaint(
        images.repeat_interleave(variations, 0), masks.repeat_interleave(variations, 0), cond, cfg.seed, **settings
    )
    seconds = time.perf_counter() - started
    filled = filled.view(len(images), variations, *run.model.image_shape)
    grid = comparison_grid([images, masked_view(images, masks), *filled.unbind(1)])
    written = [save_picture(grid, out / "grid.png")]
    if cfg.format == "png":
        png_names = [f"{name}_v{v}" for name in names for v in range(variations)]
        written.append(save_pngs(filled.flatten(0, 1), out / "images", png_names))
    elif cfg.format == "npz":
        arrays = {"inputs": images, "masks": masks.to(torch.uint8), "images": filled}
        arrays.update({} if truth is None else {"labels": truth})
        arrays.update({} if cfg.label is None else {"guide_labels": guide})
        written.append(save_npz(out / "samples.npz", **arrays))
    if cfg.split:
        record = {
            "split": str(cfg.split),
            "n": len(images),
            "variations": variations,
            "mask": str(cfg.mask),
            "mask_coverage": float(mask_coverage(masks).mean()),
            "resample": repaint.resample,
            "jump": repaint.jump,
            **sampler.options(),
            "nfe_per_image": nfe,
            "seed": int(cfg.seed),
            "label": OmegaConf.to_container(cfg.label) if OmegaConf.is_config(cfg.label) else cfg.label,
            "guidance": options.get("guidance"),
            "seconds": round(seconds, 2),
        }
        written.append(_score(run, cfg, images, truth, masks, filled, cond, record, out))
    return written


def _score(
    run: Run,
    cfg: DictConfig,
    images: Tensor,
    truth: Tensor | None,
    masks: Tensor,
    filled: Tensor,
    cond: Tensor | None,
    record: dict[str, Any],
    out: Path,
) -> Path:
    """``metrics.json``: the regenerated region's errors and, on labelled data, class consistency."""
    k = filled.shape[1]
    flat = filled.flatten(0, 1)
    metrics = {**record, **masked_errors(flat, images.repeat_interleave(k, 0), masks.repeat_interleave(k, 0))}
    if truth is not None and int(run.config.data.num_classes) > 1:
        classifier = reference_classifier(run.config.data, run.config.eval, cfg.paths.cache_dir, run.device)
        predicted = predicted_classes(classifier, flat)
        metrics["class_consistency"] = class_accuracy(predicted, truth.repeat_interleave(k))
        if cfg.label is not None and cond is not None:
            metrics["label_acc"] = class_accuracy(predicted, cond)
        metrics["classifier"] = classifier.identity
    log.info("inpainting scores: %s", ", ".join(f"{key}={value}" for key, value in metrics.items()))
    write_json(out / "metrics.json", metrics)
    return out / "metrics.json"
