"""Inpainting of a diffusion run (RePaint): the run API, `genlab sample mask=...` outputs and scores, the
visualiser's inpaint.png, and the masked-region scores against their formulas."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config
from eval_fixtures import make_run, once
from PIL import Image

from genlab.api import Run
from genlab.errors import GenlabError
from genlab.metrics.inpainting import masked_errors

TINY = [
    "model=cddpm",
    "data.image_size=16",
    "schedule.timesteps=20",
    "model.net.base_channels=8",
    "model.net.channel_mults=[1,2]",
    "model.net.attention_resolutions=[]",
    "eval.n_at_end=0",
    "callbacks.diffusion_viz.n=10",
    "callbacks.diffusion_viz.n_inpaint=4",
    "callbacks.diffusion_viz.grid_steps=6",
]
PAD = 2  # torchvision grids: 2 px between and around images


@once
def _run(factory: pytest.TempPathFactory) -> Path:
    root = factory.mktemp("inpaint")
    return make_run(root / "cddpm", TINY, root / "cache")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory)


@pytest.fixture(scope="module")
def run(run_dir: Path) -> Run:
    return Run.load(run_dir, device="cpu")


def sample(run_dir: Path, out: Path, *overrides: str) -> list[Path]:
    from genlab.tasks.sample import sample as sample_task

    cfg = compose_config("sample", [f"run={run_dir}", "device=cpu", *overrides], out)
    cfg.paths.cache_dir = str(run_dir.parent / "cache")
    return sample_task(cfg)


def test_run_api_keeps_known_pixels_exactly_and_is_seeded(run):
    images = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    from genlab.diffusion.masks import make_masks

    mask = make_masks("random_box", 5, 16, torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 3, 4])
    options = {"sampler": "ddim", "steps": 6, "resample": 2, "jump": 2}
    a = run.inpaint(images, mask, labels, seed=3, **options)
    keep = (mask == 0).expand_as(images)
    assert torch.equal(a[keep], images[keep])
    assert torch.equal(run.inpaint(images, mask, labels, seed=3, **options), a)
    other = run.inpaint(images, mask, labels, seed=4, **options)
    assert not torch.equal(other[~keep], a[~keep]) and torch.equal(other[keep], images[keep])
    assert a.min() >= -1 and a.max() <= 1
    assert "inpaint" in run.capabilities()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sampler": "dpm_solver", "steps": 4}, "cannot inpaint"),
        ({"sampler": "ddim", "steps": 4, "resample": 0}, "resample=0 must be an integer ≥ 1"),
        ({"sampler": "ddim", "steps": 4, "resample": 2, "jump": 4}, "jump=4 must be smaller"),
        ({"sampler": "ddim", "steps": 4, "truncation": 1.5}, "truncation=1.5 is not an option of sampler=ddim"),
    ],
)
def test_run_api_refuses_what_does_not_fit(run, options, message):
    with pytest.raises(GenlabError, match=message):
        run.inpaint(torch.zeros(2, 1, 16, 16), torch.ones(1, 1, 16, 16), **options)


def test_run_api_refuses_labels_out_of_range_and_masks_that_do_not_fit(run):
    images = torch.zeros(2, 1, 16, 16)
    with pytest.raises(GenlabError, match="label=10 is out of range"):
        run.inpaint(images, torch.ones(1, 1, 16, 16), torch.tensor([1, 10]), sampler="ddim", steps=2)
    with pytest.raises(GenlabError, match="one mask or one each"):
        run.inpaint(images, torch.ones(3, 1, 16, 16), sampler="ddim", steps=2)


def test_the_plan_counts_repaints_network_evaluations_doubled_by_guidance(run):
    from genlab.diffusion.inpainting import plan

    # K = 6 DDIM steps, j = 2, r = 3: K + (r − 1)·j·⌈(K − j)/j⌉ = 6 + 2·2·2 = 14; cddpm's guidance 2 doubles it
    repaint, sampler, nfe = plan(run.model, torch.tensor([1]), 3, 2, sampler="ddim", steps=6)
    assert (repaint.resample, repaint.jump, sampler.name) == (3, 2, "ddim")
    assert nfe == 2 * 14
    assert plan(run.model, torch.tensor([1]), 3, 2, guidance=1.0, sampler="ddim", steps=6)[2] == 14
    assert plan(run.model, None, 1, 2, sampler="ddim", steps=6)[2] == 6  # unguided, no resampling


def test_split_mode_writes_rows_npz_and_scores_against_the_originals(run, run_dir, tmp_path):
    out = tmp_path / "out"
    overrides = ["split=test", "n=3", "mask=center", "variations=2", "sampler=ddim", "steps=4", "resample=2"]
    written = sample(run_dir, out, *overrides, "jump=1", "format=npz", "seed=5")
    assert [p.name for p in written] == ["grid.png", "samples.npz", "metrics.json"]
    grid = np.asarray(Image.open(written[0]).convert("RGB"))
    # 3 rows × (original | masked | 2 variations) of 16 px images
    assert grid.shape == (3 * 18 + PAD, 4 * 18 + PAD, 3)
    arrays = np.load(written[1])
    inputs, masks, images = arrays["inputs"], arrays["masks"], arrays["images"]
    assert inputs.shape == (3, 1, 16, 16) and masks.shape == (3, 1, 16, 16) and images.shape == (3, 2, 1, 16, 16)
    assert masks.dtype == np.uint8 and images.dtype == np.uint8
    assert masks.sum() == 3 * 8 * 8 and masks[:, :, 4:12, 4:12].all()  # centre box, half the side
    dataset_images, dataset_labels = run.split_images("test", 3)
    assert np.array_equal(inputs, ((dataset_images + 1) * 127.5).round().numpy().astype(np.uint8))
    assert np.array_equal(arrays["labels"], dataset_labels.numpy())
    keep = masks[:, None].repeat(2, 1) == 0
    assert np.array_equal(images[keep], inputs[:, None].repeat(2, 1)[keep]), "known pixels changed"
    # the masked column: the box painted red, the rest the original
    top, left = PAD + 8, PAD + 18 + 8
    assert tuple(grid[top, left]) == (255, 0, 0)
    assert grid[PAD, PAD + 18, 0] == grid[PAD, PAD, 0] == inputs[0, 0, 0, 0]
    metrics = json.loads(written[2].read_text())
    fake = images.reshape(6, 16, 16).astype(np.float64) / 255
    real = inputs.repeat(2, 0).reshape(6, 16, 16).astype(np.float64) / 255
    region = masks.repeat(2, 0).reshape(6, 16, 16) == 1
    l1 = [np.abs(f - r)[m].mean() for f, r, m in zip(fake, real, region, strict=True)]
    psnr = [
        10 * math.log10(1 / max(((f - r)[m] ** 2).mean(), 1e-10)) for f, r, m in zip(fake, real, region, strict=True)
    ]
    assert metrics["masked_l1"] == pytest.approx(np.mean(l1), abs=1e-6)
    assert metrics["masked_psnr"] == pytest.approx(np.mean(psnr), abs=1e-4)
    assert metrics["known_pixels_changed"] == 0
    assert metrics["nfe_per_image"] == 2 * (4 + 3) and metrics["mask_coverage"] == 0.25
    from genlab.scoring.reference import reference_classifier

    classifier = reference_classifier(run.config.data, run.config.eval, run_dir.parent / "cache", torch.device("cpu"))
    as_model = torch.from_numpy(images.reshape(6, 1, 16, 16)).float() / 127.5 - 1
    predicted = classifier.features_and_logits(as_model)[1].argmax(1)
    expected = (predicted == dataset_labels.repeat_interleave(2)).double().mean()
    assert metrics["class_consistency"] == pytest.approx(float(expected))


def test_input_folder_with_a_folder_of_masks_writes_pngs_that_keep_the_known_pixels(run_dir, tmp_path):
    inputs, masks = tmp_path / "inputs", tmp_path / "masks"
    inputs.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    pixels = {name: rng.integers(0, 256, (16, 16), dtype=np.uint8) for name in ("a", "b")}
    for name, array in pixels.items():
        Image.fromarray(array).save(inputs / f"{name}.png")
    drawn = {"a": np.zeros((32, 32), np.uint8), "b": np.zeros((32, 32), np.uint8)}
    drawn["a"][:, :16] = 255  # left half, drawn at twice the model's size
    drawn["b"][8:20, 4:30] = 255
    for name, array in drawn.items():
        Image.fromarray(array).save(masks / f"{name}.png")
    overrides = [f"input={inputs}", f"mask={masks}", "variations=2", "label=7", "format=png"]
    written = sample(run_dir, tmp_path / "out", *overrides, "sampler=ddim", "steps=6")
    assert [p.name for p in written] == ["grid.png", "images"]
    for name, array in pixels.items():
        keep = drawn[name][::2, ::2] == 0
        for v in range(2):
            out = np.asarray(Image.open(tmp_path / "out" / "images" / f"{name}_v{v}.png").convert("L"))
            assert np.array_equal(out[keep], array[keep]), f"{name}_v{v}: known pixels changed"
            assert not np.array_equal(out, array)


def test_label_guides_the_fill_and_is_scored(run_dir, tmp_path):
    overrides = ["split=test", "n=2", "mask=half_top", "variations=1", "label=3", "sampler=ddim", "steps=6"]
    written = sample(run_dir, tmp_path / "out", *overrides)
    assert written[-1].name == "metrics.json"
    metrics = json.loads(written[-1].read_text())
    assert metrics["label"] == 3 and 0 <= metrics["label_acc"] <= 1 and metrics["mask_coverage"] == 0.5


def test_masked_errors_follow_their_formulas():
    originals = -torch.ones(2, 1, 2, 2)  # black
    inpainted = originals.clone()
    mask = torch.zeros(2, 1, 2, 2)
    mask[0, 0, 0] = 1  # image 0: two regenerated pixels, one of them white (error 1) and one right
    inpainted[0, 0, 0, 0] = 1
    mask[1, 0, 1, 1] = 1  # image 1: one regenerated pixel, mid-grey (error 128/255)
    inpainted[1, 0, 1, 1] = 0
    inpainted[1, 0, 0, 0] = 1  # a known pixel changed
    scores = masked_errors(inpainted, originals, mask)
    grey = 128 / 255
    assert scores["masked_l1"] == pytest.approx((0.5 + grey) / 2)
    assert scores["masked_psnr"] == pytest.approx((10 * math.log10(2) + 10 * math.log10(1 / grey**2)) / 2)
    assert scores["known_pixels_changed"] == 1
    with pytest.raises(GenlabError, match="all black"):
        masked_errors(inpainted, originals, torch.zeros(2, 1, 2, 2))


def test_the_visualiser_writes_inpaint_png_and_a_tensorboard_image(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    picture = np.asarray(Image.open(run_dir / "samples" / "inpaint.png").convert("RGB"))
    assert picture.shape == (3 * 18 + PAD, 4 * 18 + PAD, 3)  # rows: test image | masked | inpainted; 4 images
    rows = [picture[PAD + 18 * r : PAD + 18 * r + 16] for r in range(3)]
    box = np.zeros((16, 4 * 18 - PAD), bool)
    for i in range(4):
        box[4:12, 18 * i + 4 : 18 * i + 12] = True
    original, masked, filled = (row[:, PAD : PAD + 4 * 18 - PAD] for row in rows)
    assert np.array_equal(filled[~box], original[~box]) and (masked[box] == [255, 0, 0]).all()
    events = EventAccumulator(str(next((run_dir / "tensorboard").rglob("events.out.tfevents.*"))))
    events.Reload()
    assert "diffusion/inpaint" in events.Tags()["images"]
