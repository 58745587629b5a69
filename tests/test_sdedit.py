"""SDEdit image-to-image variations of a diffusion run: the two ends of strength, labels, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config, load_model, run_cli
from eval_fixtures import make_run, once
from PIL import Image

from genlab.errors import GenlabError
from genlab.models.ddpm import check_strength

TINY = [
    "data.image_size=16",
    "schedule.timesteps=20",
    "model.net.base_channels=8",
    "model.net.channel_mults=[1,2]",
    "model.net.attention_resolutions=[]",
    "eval.n_at_end=0",
    "logger=none",
]


@once
def _runs(factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = factory.mktemp("sdedit")
    return {
        "cddpm": make_run(root / "cddpm", ["model=cddpm", *TINY], root / "cache"),
        "gan": make_run(root / "gan", ["model=gan", "data.image_size=16", "logger=none"], root / "cache"),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _runs(tmp_path_factory)


@pytest.fixture(scope="module")
def model(runs):
    return load_model(runs["cddpm"])


def images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_strength_zero_returns_the_input(model):
    x = images(3)
    assert torch.equal(model.edit(x, 0.0, sampler="ddim", steps=5), x)


def test_strength_one_is_sampling_from_scratch(model):
    labels = torch.tensor([1, 2, 3])
    kwargs = {"sampler": "ddim", "steps": 5, "guidance": 1.0}
    scratch = model.generate(3, labels=labels, generator=torch.Generator().manual_seed(7), **kwargs)
    a = model.edit(images(3, 0), 1.0, labels, torch.Generator().manual_seed(7), **kwargs)
    b = model.edit(images(3, 1), 1.0, labels, torch.Generator().manual_seed(7), **kwargs)
    assert torch.allclose(a, scratch, atol=1e-6) and torch.allclose(b, scratch, atol=1e-6)


def test_intermediate_strength_stays_closer_to_the_input_than_high_strength(model):
    x = images(16, 3)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    low = model.edit(x, 0.1, generator=gen(), sampler="ddpm")
    high = model.edit(x, 0.9, generator=gen(), sampler="ddpm")
    assert (low - x).abs().mean() < (high - x).abs().mean()
    assert low.shape == x.shape and low.min() >= -1 and low.max() <= 1


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half", True])
def test_strength_outside_zero_one_is_refused(bad):
    with pytest.raises(GenlabError, match="must be a number in \\[0, 1\\]"):
        check_strength(bad)


def test_sample_split_train_writes_input_and_variation_columns(runs, tmp_path):
    from genlab.tasks.sample import sample

    cfg = compose_config(
        "sample",
        [
            f"run={runs['cddpm']}",
            "split=train",
            "n=3",
            "strength=[0.3,0.7]",
            "variations=2",
            "steps=4",
            "sampler=ddim",
            "format=npz",
            "device=cpu",
        ],
        tmp_path / "out",
    )
    written = sample(cfg)
    grid = np.asarray(Image.open(written[0]))
    # 3 rows × (1 input + 2 strengths × 2 variations) images of 16 px with 2 px padding
    assert grid.shape[:2] == (3 * 18 + 2, 5 * 18 + 2)
    arrays = np.load(written[1])
    assert arrays["inputs"].shape == (3, 1, 16, 16)
    assert arrays["images"].shape == (3, 2, 2, 1, 16, 16) and arrays["images"].dtype == np.uint8
    assert list(arrays["strengths"]) == [0.3, 0.7]
    assert arrays["labels"].shape == (3,)


def test_sample_input_folder_and_translation_label(runs, tmp_path):
    from genlab.tasks.sample import sample

    folder = tmp_path / "mine"
    folder.mkdir()
    Image.fromarray(np.full((40, 30, 3), 200, np.uint8)).save(folder / "big_rgb.png")
    cfg = compose_config(
        "sample",
        [
            f"run={runs['cddpm']}",
            f"input={folder}",
            "label=8",
            "strength=0.5",
            "variations=1",
            "steps=3",
            "sampler=ddim",
            "format=png",
            "device=cpu",
        ],
        tmp_path / "out",
    )
    written = sample(cfg)
    assert (tmp_path / "out" / "images" / "big_rgb_s0.5_v0.png").is_file()
    assert Image.open(tmp_path / "out" / "images" / "big_rgb_s0.5_v0.png").size == (16, 16)
    assert written[0].name == "grid.png"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["strength=1.5", "split=train"], "strength=1.5 must be a number in [0, 1]"),
        (["input=EMPTY"], "holds no images"),
    ],
)
def test_bad_sdedit_input(runs, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.replace("EMPTY", str(tmp_path / "empty")) for a in args]
    result = run_cli(["sample", f"run={runs['cddpm']}", "device=cpu", *args], tmp_path)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr


def test_sdedit_from_a_gan_run_is_refused(runs, tmp_path):
    result = run_cli(["sample", f"run={runs['gan']}", "split=train", "strength=0.5"], tmp_path)
    assert result.returncode != 0
    assert "model=gan cannot do" in result.stderr and "Traceback" not in result.stderr
