"""``genlab sample`` for the autoencoders: a denoising autoencoder's restorations, a VAE's interpolations
between encoded images.

- ``model=dae`` (:class:`~genlab.capabilities.Restores`): ``split=`` images (default: test) are
  noised at each ``noise_factor`` (default: the model's levels) and denoised; the grid has one row per
  image: clean | noisy | denoised | noisy | denoised …. ``input=`` images are denoised as they are
  (input | denoised), or noised first when ``noise_factor=`` is given.
- ``model=vae|cvae`` with ``interpolate=<split>`` (:class:`~genlab.capabilities.Encodes`): rows from
  one image of the split to another through the decoded latent path between their posterior means,
  with both images at the ends; a conditional VAE pairs two images of the same class (``label=`` picks
  it, otherwise every class in turn).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor

from genlab.api import Run
from genlab.capabilities import Encodes, Restores
from genlab.data.user_images import input_images, load_user_images
from genlab.errors import GenlabError
from genlab.imaging import comparison_grid, save_npz, save_picture, save_pngs
from genlab.models.dae import noise_factor_list

log = logging.getLogger("genlab")

SPLITS = ("train", "val", "test")
DEFAULT_STEPS = 8
# Images of a split searched for pairs of the same class (conditional interpolations).
PAIR_POOL = 1000


def restorations(run: Run, model: Restores, cfg: DictConfig, options: dict[str, Any], out: Path) -> list[Path]:
    """The denoising grid (module docstring), plus the denoised images as PNGs (``format=png``) or an npz."""
    for key in ("strength", "variations", "label"):
        if cfg.get(key) is not None:
            raise GenlabError(f"{key}= does not apply to model={run.name}: it denoises images (split=, input=).")
    if cfg.interpolate:
        raise GenlabError(f"interpolate= does not apply to model={run.name}: it denoises images (split=, input=).")
    given = options.get("noise_factor")
    factors = None if given is None else noise_factor_list(given, "noise_factor")
    if cfg.input:
        files = input_images(str(cfg.input))[: cfg.n]
        images = load_user_images(files, model.image_shape[0], model.image_shape[1])
        names = [path.stem for path in files]
        log.info("input images are converted to the model's channels and size %s", tuple(model.image_shape))
    else:
        images, _ = run.split_images(cfg.split or "test", cfg.n)
        names = [f"{i:05d}" for i in range(len(images))]
        factors = factors or list(model.noise_factors)
    generator = torch.Generator().manual_seed(int(cfg.seed))
    inputs = [images] if factors is None else [model.corrupt(images, f, generator) for f in factors]
    restored = [model.restore(x).cpu() for x in inputs]
    columns = [images] if factors is not None else []
    for noisy, clean in zip(inputs, restored, strict=True):
        columns += [noisy, clean]
    written = [save_picture(comparison_grid(columns, cfg.nrow or 1), out / "grid.png")]
    tags = [""] if factors is None else [f"_f{f:g}" for f in factors]
    if cfg.format == "png":
        stacked = torch.stack(restored, 1).flatten(0, 1)
        written.append(save_pngs(stacked, out / "images", [f"{name}{tag}" for name in names for tag in tags]))
    elif cfg.format == "npz":
        arrays = {"inputs": torch.stack(inputs, 1), "images": torch.stack(restored, 1)}
        if factors is not None:
            arrays.update(clean=images, noise_factors=torch.tensor(factors))
        written.append(save_npz(out / "samples.npz", **arrays))
    return written


def _pairs(run: Run, split: str, rows: int, classes: Tensor | None) -> tuple[Tensor, Tensor]:
    """(starts, ends): 2·rows images of the split, or per row two images of that row's class."""
    if classes is None:
        images, _ = run.split_images(split, 2 * rows)
        if len(images) < 2:
            raise GenlabError(f"interpolate={split}: the {split} split holds fewer than 2 images.")
        order = torch.arange(2 * rows) % (len(images) // 2 * 2)
        return images[order[0::2]], images[order[1::2]]
    images, labels = run.split_images(split, PAIR_POOL)
    if labels is None:
        raise GenlabError(f"interpolate={split}: the {split} split has no labels, which a conditional model needs.")
    starts, ends, used = [], [], {}
    for label in classes.tolist():
        members = (labels == label).nonzero().flatten()
        k = used.get(label, 0)
        if len(members) < 2:
            raise GenlabError(f"interpolate={split}: class {label} has fewer than 2 images in the first {PAIR_POOL}.")
        starts.append(images[members[(2 * k) % len(members)]])
        ends.append(images[members[(2 * k + 1) % len(members)]])
        used[label] = k + 1
    return torch.stack(starts), torch.stack(ends)


def encoded_interpolations(run: Run, cfg: DictConfig, options: dict[str, Any]) -> tuple[Tensor, Tensor | None, int]:
    """(images, labels, images per row) of the interpolations between encoded images (module docstring)."""
    split = str(cfg.interpolate)
    if split not in SPLITS:
        raise GenlabError(
            f"interpolate={split} must be true (between samples of the prior) or a split ({', '.join(SPLITS)}) "
            "to interpolate between its encoded images."
        )
    model = run.model
    if not isinstance(model, Encodes):
        raise GenlabError(
            f"interpolate={split} interpolates between encoded images, but model={run.name} has no encoder "
            "(model=vae and cvae have one): use interpolate=true, between prior samples."
        )
    run.check_options(options)
    if cfg.n < 2:
        raise GenlabError(f"n={cfg.n}: interpolate={split} needs n >= 2 (rows of nrow images).")
    steps = cfg.nrow or DEFAULT_STEPS
    if steps < 2:
        raise GenlabError(f"nrow={steps} must be at least 2 for an interpolation.")
    rows = max(1, cfg.n // steps)
    classes = run.labels(cfg.label, rows)
    starts, ends = _pairs(run, split, rows, classes)
    z_start, z_end = model.encode(starts, classes), model.encode(ends, classes)
    latents = torch.cat([model.interpolate_latents(a, b, steps) for a, b in zip(z_start, z_end, strict=True)])
    labels = None if classes is None else classes.repeat_interleave(steps)
    decoded = model.decode(latents, labels).cpu().view(rows, steps, *starts.shape[1:])
    table = torch.cat([starts.unsqueeze(1), decoded, ends.unsqueeze(1)], 1)
    row_labels = None if classes is None else classes.repeat_interleave(steps + 2)
    return table.flatten(0, 1), row_labels, steps + 2
