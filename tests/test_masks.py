"""Inpainting masks: shapes, exact coverage, determinism, PNG files and folders, refusals."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from genlab.diffusion.masks import KINDS, degenerate_masks, make_masks, mask_coverage
from genlab.errors import GenlabError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_gives_binary_float_masks_of_the_model_size_with_something_to_keep_and_to_regenerate(kind):
    masks = make_masks(kind, 6, 16, gen())
    assert masks.shape == (6, 1, 16, 16) and masks.dtype == torch.float32
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    coverage = mask_coverage(masks)
    assert ((coverage > 0) & (coverage < 1)).all()
    assert degenerate_masks(masks) is None


@pytest.mark.parametrize("kind", ["random_box", "strokes"])
def test_random_kinds_depend_on_the_seed_only(kind):
    a, b, c = (make_masks(kind, 8, 16, gen(seed)) for seed in (3, 3, 4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not all(torch.equal(a[0], a[i]) for i in range(1, 8))  # each image gets its own mask


@pytest.mark.parametrize(("size", "mask_size", "side"), [(16, 0.5, 8), (16, 1.0, 16), (8, 0.3, 2), (5, 0.01, 1)])
def test_center_is_a_centred_square_of_the_given_share(size, mask_size, side):
    mask = make_masks("center", 2, size, gen(), mask_size=mask_size)
    start = (size - side) // 2
    expected = torch.zeros(size, size)
    expected[start : start + side, start : start + side] = 1
    assert torch.equal(mask[0, 0], expected) and torch.equal(mask[1, 0], expected)
    assert mask_coverage(mask)[0].item() == pytest.approx(side**2 / size**2)


@pytest.mark.parametrize("size", [16, 5])
def test_halves_split_the_image_exactly(size):
    left, right, top, bottom = (make_masks(f"half_{s}", 1, size, gen()) for s in ("left", "right", "top", "bottom"))
    assert torch.equal(left + right, torch.ones_like(left))
    assert torch.equal(top + bottom, torch.ones_like(top))
    assert left[0, 0, :, : size // 2].eq(1).all() and left[0, 0, :, size // 2 :].eq(0).all()
    assert top[0, 0, : size // 2].eq(1).all() and torch.equal(top[0, 0].T, left[0, 0])


def test_random_boxes_are_single_rectangles_with_sides_within_the_bounds():
    masks = make_masks("random_box", 200, 20, gen(), size_range=(0.2, 0.5))
    for mask in masks[:, 0]:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        height, width = len(rows), len(cols)
        assert rows[-1] - rows[0] + 1 == height and cols[-1] - cols[0] + 1 == width  # contiguous
        assert mask.sum().item() == height * width  # filled rectangle
        assert 4 <= height <= 10 and 4 <= width <= 10
    heights = masks[:, 0].any(2).sum(1)
    assert heights.min() == 4 and heights.max() == 10  # the bounds are reached
    corners = masks[:, 0].any(2).float().argmax(1)
    assert corners.min() == 0 and (corners + heights).max() == 20  # boxes touch both edges


def test_strokes_always_mark_pixels_even_with_a_hair_thin_brush_and_cover_a_quarter_by_default():
    thin = make_masks("strokes", 50, 16, gen(), width=(0.01, 0.01), count=(1, 1), vertices=(1, 1))
    assert (mask_coverage(thin) > 0).all()
    default = mask_coverage(make_masks("strokes", 100, 16, gen()))
    assert 0.15 < default.mean().item() < 0.4


def write_png(path, values, mode="L"):
    image = Image.fromarray(values.to(torch.uint8).numpy(), mode="L")
    image.convert(mode).save(path)
    return path


def quadrant(n: int) -> torch.Tensor:
    values = torch.zeros(n, n)
    values[: n // 2, : n // 2] = 255
    return values


@pytest.mark.parametrize("mode", ["L", "RGB", "1"])
def test_a_png_mask_is_white_for_regenerate_and_is_resized_nearest(tmp_path, mode):
    path = write_png(tmp_path / "m.png", quadrant(8), mode)
    same = make_masks(str(path), 3, 8, gen())
    assert same.shape == (3, 1, 8, 8) and torch.equal(same[0, 0], quadrant(8) / 255)
    assert torch.equal(make_masks(str(path), 1, 4, gen())[0, 0], quadrant(4) / 255)
    assert torch.equal(make_masks(str(path), 1, 16, gen())[0, 0], quadrant(16) / 255)


def test_grey_pixels_are_thresholded_at_128(tmp_path):
    values = torch.tensor([[0, 127], [128, 255]])
    mask = make_masks(str(write_png(tmp_path / "g.png", values)), 1, 2, gen())
    assert mask[0, 0].tolist() == [[0.0, 0.0], [1.0, 1.0]]


def test_a_folder_of_masks_is_paired_with_the_inputs_by_file_name(tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    write_png(folder / "b.png", quadrant(4))
    write_png(folder / "a.png", 255 - quadrant(4))
    masks = make_masks(str(folder), 2, 4, gen(), paths=["in/b.jpg", "in/a.png"])
    assert torch.equal(masks[0, 0], quadrant(4) / 255) and torch.equal(masks[1, 0], 1 - quadrant(4) / 255)
    with pytest.raises(GenlabError, match=r"no mask for 1 input image\(s\), e.g. c.png"):
        make_masks(str(folder), 2, 4, gen(), paths=["a.png", "c.png"])
    with pytest.raises(GenlabError, match="needs the 2 input images' paths, got no input paths"):
        make_masks(str(folder), 2, 4, gen())


def test_bad_mask_files_are_refused_clearly(tmp_path):
    with pytest.raises(GenlabError, match="no such file"):
        make_masks(str(tmp_path / "missing.png"), 1, 8, gen())
    wide = write_png(tmp_path / "wide.png", torch.zeros(6, 8))
    with pytest.raises(GenlabError, match=r"is 8×6 pixels, not square; the model's images are 8×8"):
        make_masks(str(wide), 1, 8, gen())
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(GenlabError, match="is not a readable image"):
        make_masks(str(broken), 1, 8, gen())


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: make_masks("circle", 1, 8, gen()), "mask=circle is neither a mask kind.*center, random_box, strokes"),
        (lambda: make_masks("center", 1, 8, gen(), mask_size=0), r"mask_size=0 must be a share of the image side"),
        (lambda: make_masks("center", 1, 8, gen(), mask_size=1.5), r"mask_size=1.5 must be"),
        (lambda: make_masks("random_box", 1, 8, gen(), size_range=(0.6, 0.2)), r"low ≤ high"),
        (lambda: make_masks("strokes", 1, 8, gen(), count=(0, 2)), r"count=\(0, 2\) must be a pair of integers"),
        (lambda: make_masks("half_left", 1, 8, gen(), width=(0.1, 0.2)), "not an option of mask=half_left"),
        (lambda: make_masks("center", 1, 8, gen(), size_range=(0.1, 0.2)), r"it takes mask_size"),
    ],
)
def test_bad_kinds_and_options_are_refused_by_name(call, needle):
    with pytest.raises(GenlabError, match=needle):
        call()


def test_degenerate_masks_names_all_black_and_all_white_images():
    masks = torch.cat([torch.zeros(1, 1, 4, 4), make_masks("center", 1, 4, gen()), torch.ones(2, 1, 4, 4)])
    assert mask_coverage(masks).tolist() == [0.0, 0.25, 1.0, 1.0]
    message = degenerate_masks(masks)
    assert "1 of 4 masks (images 0) are all black: nothing to regenerate" in message
    assert "2 of 4 masks (images 2, 3) are all white: nothing is kept, the same as sampling from scratch" in message
