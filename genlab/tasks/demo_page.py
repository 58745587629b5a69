"""The Gradio page of ``genlab demo``: controls by what the run's model can do, each action an API endpoint.

- generators: seed, n, a class label (conditional models), truncation (GANs), sampler / steps / guidance
  (diffusion models) → a sample grid (``/generate``; the page opens with one);
- diffusion models also edit an uploaded image at an SDEdit strength (``/edit``);
- translators (pix2pix) translate an uploaded image (``/translate``).

Inpainting with a drawn mask goes beside ``/edit`` once the run API has ``Run.inpaint(images, mask, labels,
seed, **options)`` (mask 1 = fill): a ``gr.ImageEditor`` whose layer is the mask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.utils import make_grid

from genlab.api import Run
from genlab.capabilities import Edits, Generates, Interpolates, Translates, generates_conditionally
from genlab.data.user_images import load_user_images
from genlab.diffusion.samplers.base import registered_samplers, sampler_class
from genlab.errors import GenlabError
from genlab.imaging import default_nrow, to_unit_range

ALL_CLASSES = "all classes"
VARIATIONS = 4


def picture(images: torch.Tensor, nrow: int) -> np.ndarray:
    """A grid of images in [-1, 1] as an (H, W, 3) uint8 array."""
    grid = make_grid(to_unit_range(images.float()), nrow=nrow, padding=2, pad_value=1.0)
    return grid.mul(255).round().byte().permute(1, 2, 0).numpy()


def sampling_options(run: Run, truncation: float, sampler: str, steps: int, guidance: float) -> dict[str, Any]:
    """The model's options from the controls it has (a control it lacks arrives as None)."""
    accepted = run.generation_options()
    options: dict[str, Any] = {}
    if truncation and "truncation" in accepted:
        options["truncation"] = float(truncation)
    if sampler and "sampler" in accepted:
        options["sampler"] = sampler
        if steps and "steps" in sampler_class(sampler).option_names():
            options["steps"] = int(steps)
    if guidance is not None and "guidance" in accepted:
        options["guidance"] = float(guidance)
    return options


class DemoActions:
    """What the page's buttons call, on one loaded run (plain functions of the controls' values)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.classes = int(run.model.num_classes) if generates_conditionally(run.model) else 0

    def label(self, value: str | None) -> int | None:
        return None if value in (None, "", ALL_CLASSES) else int(value)

    def generate(
        self, seed: float, n: float, label: str | None, truncation: float, sampler: str, steps: float, guidance: float
    ) -> np.ndarray:
        """A grid of ``n`` samples for ``seed`` (one row per class when no label is chosen)."""
        options = sampling_options(self.run, truncation, sampler, int(steps or 0), guidance)
        samples = self.run.sample(int(n), int(seed), self.label(label), **options)
        return picture(samples.images, default_nrow(int(n), samples.labels, self.classes))

    def edit(
        self, path: str, strength: float, seed: float, label: str | None, sampler: str, steps: float, guidance: float
    ) -> np.ndarray:
        """The uploaded image beside SDEdit variations of it at ``strength``."""
        channels, size = self.run.model.image_shape[0], self.run.model.image_shape[1]
        image = self._upload(path, channels, size)
        labels = None if self.label(label) is None else torch.full((VARIATIONS,), self.label(label))
        options = sampling_options(self.run, 0.0, sampler, int(steps or 0), guidance)
        varied = self.run.edit(image.repeat(VARIATIONS, 1, 1, 1), float(strength), labels, int(seed), **options)
        return picture(torch.cat([image, varied]), VARIATIONS + 1)

    def translate(self, path: str) -> np.ndarray:
        """The uploaded image beside its translation."""
        model = self.run.model
        image = self._upload(path, model.input_channels(), model.image_size)
        output = self.run.translate(image)
        if image.shape[1] != output.shape[1]:  # show a one-channel side in colour beside the other
            image, output = (t.expand(-1, max(image.shape[1], output.shape[1]), -1, -1) for t in (image, output))
        return picture(torch.cat([image, output]), 2)

    @staticmethod
    def _upload(path: str | None, channels: int, size: int) -> torch.Tensor:
        if not path:
            raise GenlabError("upload an image first.")
        return load_user_images([Path(path)], channels, size)


def build_page(run: Run, gr: Any) -> Any:
    """The ``gr.Blocks`` page of ``run`` (``gr``: the gradio module, an optional dependency)."""
    actions = DemoActions(run)
    model, options = run.model, run.generation_options()
    title = f"genlab demo: {run.name} on {run.config.data.name}"

    def guarded(function: Any) -> Any:
        def call(*values: Any) -> Any:
            try:
                return function(*values)
            except GenlabError as err:
                raise gr.Error(str(err)) from None

        call.__name__ = function.__name__
        return call

    with gr.Blocks(title=title, analytics_enabled=False) as page:
        gr.Markdown(f"# {title}\n`{run.directory}` ({run.checkpoint.name})")
        with gr.Row():
            seed = gr.Number(value=0, precision=0, label="seed")
            n = gr.Slider(1, 64, value=16 if actions.classes == 0 else 2 * actions.classes, step=1, label="n")
            label = gr.Dropdown(
                [ALL_CLASSES, *map(str, range(actions.classes))],
                value=ALL_CLASSES,
                label="label",
                visible=actions.classes > 0,
            )
            truncation = gr.Slider(
                0, 3, value=0, step=0.1, label="truncation (0 = off)", visible=isinstance(model, Interpolates)
            )
        diffusion = "sampler" in options
        with gr.Row(visible=diffusion):
            sampler = gr.Dropdown(list(registered_samplers()), value="ddim" if diffusion else None, label="sampler")
            steps = gr.Slider(1, 1000, value=20, step=1, label="steps (samplers that take them)")
            guidance = gr.Slider(0, 8, value=1, step=0.1, label="guidance", visible="guidance" in options)
        if isinstance(model, Generates):
            with gr.Tab("Sample"):
                button = gr.Button("Generate", variant="primary")
                grid = gr.Image(type="numpy", label="samples", format="png")
            controls = [seed, n, label, truncation, sampler, steps, guidance]
            button.click(guarded(actions.generate), controls, grid, api_name="generate")
            page.load(guarded(actions.generate), controls, grid)
        if isinstance(model, Edits):
            with gr.Tab("Edit an image (SDEdit)"):
                upload = gr.Image(type="filepath", label="image")
                strength = gr.Slider(0, 1, value=0.5, step=0.05, label="strength")
                edit_button = gr.Button("Edit")
                edited = gr.Image(type="numpy", label=f"input | {VARIATIONS} variations", format="png")
            edit_inputs = [upload, strength, seed, label, sampler, steps, guidance]
            edit_button.click(guarded(actions.edit), edit_inputs, edited, api_name="edit")
        if isinstance(model, Translates):
            with gr.Tab("Translate an image"):
                source = gr.Image(type="filepath", label="input")
                translate_button = gr.Button("Translate", variant="primary")
                translated = gr.Image(type="numpy", label="input | output", format="png")
            translate_button.click(guarded(actions.translate), [source], translated, api_name="translate")
    return page
