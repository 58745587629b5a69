"""``genlab sample run=DIR``: generate images from a trained run, using the run's own config.

Modes, by what the run's model can do and what is asked: samples from noise (the default for
generators), latent interpolations (``interpolate=true``), translations of a split's pairs or of
``input=`` images (translators), SDEdit variations of a split's or ``input=`` images (``strength=``),
inpainting of a split's or ``input=`` images (``mask=``, :mod:`genlab.tasks.inpaint`); a denoising
autoencoder's restorations and a VAE's ``interpolate=<split>`` (:mod:`genlab.tasks.autoencoders`).
Outputs go to ``DIR/sample/<date_time>/`` as ``grid.png`` (+ ``images/`` or ``samples.npz``); a
failed command leaves no folder behind.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from genlab.api import Run
from genlab.capabilities import Edits, Restores, Translates, Varies
from genlab.data.unpaired import UnpairedDataModule
from genlab.data.user_images import channel_mismatches, input_images, load_user_images, output_names
from genlab.diffusion.sdedit import strength_list
from genlab.errors import GenlabError
from genlab.imaging import (
    SAMPLE_FORMATS,
    comparison_grid,
    default_nrow,
    groups_per_row,
    save_grid,
    save_npz,
    save_picture,
    save_pngs,
)
from genlab.tasks.autoencoders import encoded_interpolations, restorations
from genlab.tasks.common import CONFIG_PATH, discard, extra_options, plus_unknown_keys, run_task
from genlab.tasks.inpaint import asks_inpainting, inpaintings

log = logging.getLogger("genlab")

DEFAULT_VARIATIONS = 4
DEFAULT_STRENGTH = 0.5


def _check(cfg: DictConfig) -> None:
    if cfg.format not in SAMPLE_FORMATS:
        raise GenlabError(f"format={cfg.format} is not one of {', '.join(SAMPLE_FORMATS)}.")
    if cfg.n < 1:
        raise GenlabError(f"n={cfg.n} must be at least 1.")
    if cfg.get("input") and cfg.get("split"):
        raise GenlabError(f"input={cfg.input} and split={cfg.split} were both given: choose one.")


def write_samples(
    images: torch.Tensor, labels: torch.Tensor | None, out: Path, cfg: DictConfig, nrow: int
) -> list[Path]:
    """``grid.png``, plus one PNG per image (``format=png``) or ``samples.npz`` (``format=npz``)."""
    written = [save_grid(images, out / "grid.png", nrow)]
    if cfg.format == "png":
        names = [f"{i:05d}" + ("" if labels is None else f"_label{int(labels[i])}") for i in range(len(images))]
        written.append(save_pngs(images, out / "images", names))
    elif cfg.format == "npz":
        arrays = {"images": images} if labels is None else {"images": images, "labels": labels}
        written.append(save_npz(out / "samples.npz", **arrays))
    return written


def from_noise(run: Run, cfg: DictConfig, options: dict[str, Any], out: Path) -> list[Path]:
    """Samples (or latent interpolations) written as a grid / PNGs / npz."""
    if cfg.interpolate:
        steps = cfg.nrow or 8
        if cfg.n < 2:
            raise GenlabError(f"n={cfg.n}: interpolate=true needs n >= 2 (rows of nrow images).")
        samples = run.interpolate(max(1, cfg.n // steps), steps, cfg.seed, cfg.label, **options)
        return write_samples(samples.images, samples.labels, out, cfg, steps)
    samples = run.sample(cfg.n, cfg.seed, cfg.label, **options)
    classes = int(getattr(run.model, "num_classes", 0))
    return write_samples(
        samples.images, samples.labels, out, cfg, cfg.nrow or default_nrow(cfg.n, samples.labels, classes)
    )


def translation_rows(run: Run, split: str, n: int, direction: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The first ``n`` inputs of ``split`` for ``direction`` (A for AtoB, B for BtoA) and their true targets
    (None where an unpaired split keeps no true pairs)."""
    model = run.model
    if direction not in model.directions:
        raise GenlabError(f"direction={direction} is not one of {', '.join(model.directions)} for model={run.name}.")
    a, b = run.split_pairs(split, n)
    if model.paired:
        return a, b
    inputs, targets = (a, b) if direction == "AtoB" else (b, a)
    true_pairs = isinstance(run.datamodule, UnpairedDataModule) and run.datamodule.has_true_pairs(split)
    return inputs, targets if true_pairs else None


def translations(run: Run, cfg: DictConfig, out: Path) -> list[Path]:
    """Rows input | output (| cycle reconstruction for two-way translators) | target (where the split has true
    pairs) of a split in ``direction``, or the translations of ``input=`` images."""
    if cfg.strength is not None or cfg.variations is not None or cfg.label is not None:
        given = next(k for k in ("strength", "variations", "label") if cfg.get(k) is not None)
        raise GenlabError(f"{given}= does not apply to model={run.name}: it translates images (input= or split=).")
    if cfg.input:
        files = input_images(str(cfg.input))
        channels = run.model.input_channels(cfg.direction)
        converted = channel_mismatches(files, channels)
        if converted:
            listed = ", ".join(f"{path.name} ({count})" for path, count in converted)
            log.warning(
                "converted %d input image(s) to %d channel(s), the source domain of direction=%s: %s",
                len(converted), channels, cfg.direction, listed,
            )  # fmt: skip
        inputs = load_user_images(files, channels, run.model.image_size)
        outputs = run.translate(inputs, cfg.direction)
        per_row = cfg.nrow or groups_per_row(len(files), 3)
        written = [save_picture(comparison_grid([inputs, outputs], per_row), out / "grid.png")]
        names = [name.removesuffix(".png") for name in output_names(files)]
        save_pngs(outputs, out, names)
        for path, name in zip(files, names, strict=True):
            log.info("%s -> %s", path, out / f"{name}.png")
        return [*written, *(out / f"{name}.png" for name in names)]
    inputs, targets = translation_rows(run, cfg.split or "test", cfg.n, cfg.direction)
    columns = {"inputs": inputs, "images": run.translate(inputs, cfg.direction)}
    if not run.model.paired:
        back = next(d for d in run.model.directions if d != cfg.direction)
        columns["reconstructions"] = run.translate(columns["images"], back)
    if targets is not None:
        columns["targets"] = targets
    grid = comparison_grid(list(columns.values()), cfg.nrow or groups_per_row(len(inputs), len(columns)))
    written = [save_picture(grid, out / "grid.png")]
    if cfg.format == "png":
        folder = out / "images"
        for i in range(len(inputs)):
            save_picture(comparison_grid([c[i : i + 1] for c in columns.values()]), folder / f"{i:05d}.png")
        written.append(folder)
    elif cfg.format == "npz":
        written.append(save_npz(out / "samples.npz", **columns))
    return written


def edits(run: Run, cfg: DictConfig, options: dict[str, Any], out: Path) -> list[Path]:
    """SDEdit variations: a grid with each input and its variations at every strength, PNGs or npz."""
    strengths = strength_list(DEFAULT_STRENGTH if cfg.strength is None else cfg.strength)
    variations = DEFAULT_VARIATIONS if cfg.variations is None else cfg.variations
    if isinstance(variations, bool) or not isinstance(variations, int) or variations < 1:
        raise GenlabError(f"variations={variations} must be an integer ≥ 1 (variations per input image).")
    channels, size = run.model.image_shape[0], run.model.image_shape[1]
    if cfg.input:
        files = input_images(str(cfg.input))[: cfg.n]
        log.info(
            "input images are converted to %d channel(s) and resized to %d×%d (the model's size)", channels, size, size
        )
        images, labels, names = load_user_images(files, channels, size), None, [path.stem for path in files]
    else:
        images, labels = run.split_images(cfg.split or "train", cfg.n)
        names = [f"{i:05d}" for i in range(len(images))]
    if cfg.label is not None:
        labels = run.labels(cfg.label, len(images))
    elif labels is not None and int(getattr(run.model, "num_classes", 0)) == 0:
        labels = None
    log.info("SDEdit: %d inputs × %d variations at strength %s", len(images), variations, strengths)
    repeated = images.repeat_interleave(variations, 0)
    cond = None if labels is None else labels.repeat_interleave(variations, 0)
    columns = [images.unsqueeze(1)]
    for k, strength in enumerate(strengths):
        varied = run.edit(repeated, strength, cond, cfg.seed + k, **options)
        columns.append(varied.view(len(images), variations, *run.model.image_shape))
    table = torch.cat(columns, 1)
    written = [save_grid(table.flatten(0, 1), out / "grid.png", table.shape[1])]
    varied = table[:, 1:].reshape(len(images), len(strengths), variations, *run.model.image_shape)
    if cfg.format == "png":
        png_names = [f"{n}_s{s:g}_v{v}" for n in names for s in strengths for v in range(variations)]
        written.append(save_pngs(varied.flatten(0, 2), out / "images", png_names))
    elif cfg.format == "npz":
        arrays = {"inputs": images, "images": varied, "strengths": torch.tensor(strengths)}
        if labels is not None:
            arrays["labels"] = labels
        written.append(save_npz(out / "samples.npz", **arrays))
    return written


def dagan_variations(run: Run, cfg: DictConfig, out: Path) -> list[Path]:
    """DAGAN: each input (``input=`` images, or the first n of ``split=``, default test) beside its variations."""
    given = next(
        (k for k in ("strength", "label") if cfg.get(k) is not None), "interpolate" if cfg.interpolate else None
    )
    if given:
        raise GenlabError(
            f"{given}= does not apply to model={run.name}: it varies given images (input= or split=, n, variations=)."
        )
    variations = DEFAULT_VARIATIONS if cfg.variations is None else cfg.variations
    if cfg.input:
        files = input_images(str(cfg.input))[: cfg.n]
        images = load_user_images(files, run.model.image_shape[0], run.model.image_shape[1])
    else:
        images, _ = run.split_images(cfg.split or "test", cfg.n)
    varied = run.vary(images, variations, cfg.seed)
    table = torch.cat([images.unsqueeze(1), varied], 1)
    written = [save_grid(table.flatten(0, 1), out / "grid.png", table.shape[1])]
    if cfg.format == "png":
        names = [f"{i:05d}_v{v}" for i in range(len(images)) for v in range(variations)]
        written.append(save_pngs(varied.flatten(0, 1), out / "images", names))
    elif cfg.format == "npz":
        written.append(save_npz(out / "samples.npz", inputs=images, images=varied))
    return written


def sample(cfg: DictConfig) -> list[Path]:
    """Rebuild the run's model, load its checkpoint and write samples under ``run/sample/<date_time>/``."""
    _check(cfg)
    run = Run.load(cfg.run, cfg.ckpt, cfg.device)
    options = extra_options(cfg, "sample", run.generation_options())
    if cfg.options:
        accepted = run.generation_options()
        print("\n".join(f"{k}: {v}" for k, v in accepted.items()) or f"model={run.name} takes no sampling options.")
        return []
    out = Path(cfg.paths.run_dir)
    image_to_image = bool(cfg.input or cfg.split or cfg.strength is not None)
    if asks_inpainting(cfg):
        written = inpaintings(run, cfg, options, out)
    elif isinstance(run.model, Translates):
        if options or cfg.interpolate:
            raise GenlabError(f"model={run.name} translates images; it takes input=, split=, n, direction=.")
        written = translations(run, cfg, out)
    elif isinstance(run.model, Restores):
        written = restorations(run, run.model, cfg, options, out)
    elif isinstance(run.model, Varies):
        written = dagan_variations(run, cfg, out)
    elif image_to_image:
        if not isinstance(run.model, Edits):
            raise GenlabError(
                f"input=/split=/strength= vary given images, which model={run.name} cannot do: SDEdit needs a "
                "diffusion run (model=ddpm or cddpm); translation needs pix2pix."
            )
        written = edits(run, cfg, options, out)
    elif isinstance(cfg.interpolate, str):
        images, labels, nrow = encoded_interpolations(run, cfg, options)
        written = write_samples(images, labels, out, cfg, nrow)
    else:
        if cfg.variations is not None:
            raise GenlabError(
                f"variations={cfg.variations} applies to image-to-image sampling: add input=PATH or split=train."
            )
        written = from_noise(run, cfg, options, out)
    for path in written:
        print(path)
    return written


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="sample")
def main(cfg: DictConfig) -> None:
    """Hydra entry point of ``genlab sample``."""
    out = Path(cfg.paths.run_dir)
    run_task(sample, cfg, cleanup=None if cfg.get("options") else lambda: discard(out))


def rewrite_args(args: list[str]) -> list[str]:
    """The model's sampling options (``truncation=1.5``, ``sampler=ddim``) are not in sample.yaml: add them."""
    return plus_unknown_keys(args, "sample")
