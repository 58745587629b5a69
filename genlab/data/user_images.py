"""Images a user points a command at with ``input=PATH`` (one file or a folder of files)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from genlab.data.datasets import IMAGE_SUFFIXES, list_images
from genlab.errors import GenlabError
from genlab.imaging import to_model_range


def input_images(input_path: str) -> list[Path]:
    """The image files ``input=`` names: one image, or the images directly inside a folder."""
    path = Path(input_path).expanduser()
    suffixes = ", ".join(IMAGE_SUFFIXES)
    if not path.exists():
        raise GenlabError(f"input={input_path} does not exist: pass an image file or a folder of images ({suffixes}).")
    if path.is_file():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise GenlabError(f"input={input_path} is not an image file: use one of {suffixes}.")
        return [path]
    files = list_images(path)
    if not files:
        raise GenlabError(f"input={input_path} holds no images ({suffixes}): put the images to translate there.")
    return files


def output_names(files: list[Path]) -> list[str]:
    """``<stem>.png`` for each input, made unique (``grid.png`` is the overview)."""
    used = {"grid.png"}
    names = []
    for path in files:
        name = f"{path.stem}.png"
        if name in used:
            name = f"{path.stem}_{path.suffix.lstrip('.')}.png"
        used.add(name)
        names.append(name)
    return names


def channel_mismatches(files: list[Path], channels: int) -> list[tuple[Path, int]]:
    """The files whose images do not have ``channels`` channels (alpha counted), with the channels they have."""
    found = []
    for path in files:
        try:
            with Image.open(path) as pil:
                count = len(pil.getbands())
        except (UnidentifiedImageError, OSError) as err:
            raise GenlabError(f"input image {path} cannot be read ({err}).") from None
        if count != channels:
            found.append((path, count))
    return found


def load_user_image(path: Path, channels: int, size: int) -> Tensor:
    """A user's image converted to ``channels`` (1 = grey, 3 = RGB), resized to size², in [-1, 1]."""
    try:
        with Image.open(path) as pil:
            image = TF.pil_to_tensor(pil.convert("L" if channels == 1 else "RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise GenlabError(f"input image {path} cannot be read ({err}).") from None
    image = TF.resize(image, [size, size], antialias=True)
    return to_model_range(image.float().div(255))


def load_user_images(files: list[Path], channels: int, size: int) -> Tensor:
    """Every file of ``files`` as one batch (N, channels, size, size) in [-1, 1]."""
    return torch.stack([load_user_image(path, channels, size) for path in files])
