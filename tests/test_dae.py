"""model=dae: noise levels in the course's units, a PSNR gain once trained, figures, sample and eval."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import compose_config
from eval_fixtures import make_run, once
from PIL import Image

from genlab.api import Run
from genlab.build import instantiate_datamodule
from genlab.capabilities import Denoises, Generates, Restores
from genlab.errors import GenlabError
from genlab.metrics.restoration import RestorationScorer, psnr, ssim
from genlab.models.dae import DenoisingAutoencoderModule, noise_range
from genlab.nets.autoencoder import DenoisingAutoencoder
from genlab.tasks.eval import evaluate
from genlab.tasks.sample import sample

TINY_DAE = ["model=dae", "data.image_size=16", "model.net.widths=[8,16]", "logger=none"]


def dae(noise_factor=(0.1, 0.5), widths=(8, 16), size=16) -> DenoisingAutoencoderModule:
    optimizer = torch.optim.Adam
    return DenoisingAutoencoderModule(DenoisingAutoencoder(1, size, widths), optimizer, 1, size, noise_factor)


def test_factors_are_drawn_from_the_range_and_mean_the_course_units():
    model = dae((0.1, 0.5))
    factors = model._factors(20_000, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert factors.min() >= 0.1 and factors.max() <= 0.5
    assert factors.mean().item() == pytest.approx(0.3, abs=0.005)  # uniform on [0.1, 0.5]
    assert factors.std().item() == pytest.approx(0.4 / math.sqrt(12), rel=0.02)
    assert torch.equal(dae(0.3)._factors(5, torch.device("cpu")), torch.full((5,), 0.3))
    # noise_factor c on [0, 1] images = standard deviation 2c on genlab's [-1, 1] images
    zeros = torch.zeros(16, 1, 32, 32)
    noise = model.corrupt(zeros, 0.25, torch.Generator().manual_seed(1))
    assert noise.std().item() == pytest.approx(0.5, rel=0.03)
    assert abs(noise.mean().item()) < 4 * 0.5 / math.sqrt(noise.numel())
    per_image = model.corrupt(zeros[:2], torch.tensor([0.0, 0.4]), torch.Generator().manual_seed(2))
    assert torch.equal(per_image[0], zeros[0]) and per_image[1].std().item() == pytest.approx(0.8, rel=0.05)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (-0.1, r"model\.noise_factor=-0\.1 must be a number >= 0"),
        ([0.5, 0.1], r"lo <= hi"),
        ([0.1, 0.2, 0.3], r"one factor .* or a range"),
        ("high", r"model\.noise_factor=high must be a number"),
        ([0.1, float("nan")], r"must be a number"),
    ],
)
def test_bad_noise_factors_are_refused(value, match):
    with pytest.raises(GenlabError, match=match):
        noise_range(value)


def test_corrupt_refuses_a_negative_factor_naming_the_option():
    with pytest.raises(GenlabError, match=r"^noise_factor=-0\.2 must be a number >= 0"):
        dae().corrupt(torch.zeros(1, 1, 16, 16), -0.2)


def test_psnr_and_ssim_match_their_formulas():
    clean = torch.zeros(3, 1, 16, 16)  # grey 0.5 in [0, 1]
    shifted = clean + 0.2  # 0.1 in [0, 1] units: MSE 0.01, PSNR 20 dB
    assert torch.allclose(psnr(shifted, clean), torch.full((3,), 20.0), atol=1e-4)
    assert torch.allclose(ssim(clean, clean), torch.ones(3), atol=1e-5)
    # values outside [-1, 1] are clipped first, as in a saved image
    assert torch.allclose(psnr(-torch.ones(1, 1, 4, 4) - 5, -torch.ones(1, 1, 4, 4)), torch.tensor([100.0]))


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    data = instantiate_datamodule(compose_config("train", ["data.image_size=16"], tmp_path_factory.mktemp("d")))
    data.setup()
    return data


def test_a_trained_dae_beats_the_noisy_input_at_every_level_and_identity_does_not(digits):
    torch.manual_seed(0)
    model = dae((0.1, 0.5), widths=(16, 32))
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    batches = digits.dataloader("train", shuffle=True)
    losses = []
    for _ in range(6):
        for images, _ in batches:
            loss = torch.nn.functional.mse_loss(
                model.net(model.corrupt(images, model._factors(len(images), "cpu"))), images
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])
    scorer = RestorationScorer([0.1, 0.3, 0.5], metrics=["psnr", "ssim"], n=200, protocol={})
    scores = scorer.score(model, digits.dataloader("test"), seed=0)
    assert scores["n"] == 200 and scores["noise_factors"] == [0.1, 0.3, 0.5]
    gains = [d - n for d, n in zip(scores["psnr_denoised"], scores["psnr_noisy"], strict=True)]
    assert min(gains) > 0 and scores["psnr_gain_min"] == pytest.approx(min(gains), abs=1e-3)
    assert all(d > n for d, n in zip(scores["ssim_denoised"], scores["ssim_noisy"], strict=True))
    assert scores["psnr_noisy"] == sorted(scores["psnr_noisy"], reverse=True)  # more noise, lower PSNR

    class Identity(DenoisingAutoencoderModule):
        def restore(self, images):
            return images

    identity = Identity(model.net, torch.optim.Adam, 1, 16)
    same = scorer.score(identity, digits.dataloader("test"), seed=0)
    assert same["psnr_denoised"] == same["psnr_noisy"] == scores["psnr_noisy"]


@once
def _run(factory):
    root = factory.mktemp("dae")
    return make_run(root / "run", [*TINY_DAE, "trainer.max_epochs=2"], root / "cache")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return _run(tmp_path_factory)


def test_a_dae_run_restores_and_draws_its_figures(run_dir):
    run = Run.load(run_dir, device="cpu")
    assert isinstance(run.model, Restores) and not isinstance(run.model, Generates | Denoises)
    assert run.capabilities() == ["restore"]
    assert run.model.noise_factors == (0.1, 0.2, 0.3, 0.4, 0.5)
    with Image.open(run_dir / "samples" / "denoise.png") as image:  # 8 rows of clean + 5 × (noisy, denoised)
        assert image.size == (11 * 18 + 2, 8 * 18 + 2)
    with Image.open(run_dir / "samples" / "iterate.png") as image:  # 8 rows of 0, 1, 2, 5, 10, 20, 50, 100 steps
        assert image.size == (8 * 18 + 2, 8 * 18 + 2)


def test_sample_denoises_a_split_and_input_images(run_dir, tmp_path):
    out = tmp_path / "out"
    cfg = compose_config("sample", [f"run={run_dir}", "n=3", "noise_factor=[0.2,0.4]", "format=npz"], out)
    written = sample(cfg)
    with Image.open(written[0]) as grid:  # 3 rows: clean, noisy, denoised, noisy, denoised
        assert grid.size == (5 * 18 + 2, 3 * 18 + 2)
    arrays = np.load(written[1])
    assert arrays["inputs"].shape == arrays["images"].shape == (3, 2, 1, 16, 16)
    assert arrays["noise_factors"].tolist() == pytest.approx([0.2, 0.4]) and arrays["clean"].shape == (3, 1, 16, 16)
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(2):
        Image.new("L", (24, 24), 40 * i).save(folder / f"{i}.png")
    cfg = compose_config("sample", [f"run={run_dir}", f"input={folder}", "format=png"], tmp_path / "out2")
    written = sample(cfg)
    with Image.open(written[0]) as grid:  # as given: input | denoised
        assert grid.size == (2 * 18 + 2, 2 * 18 + 2)
    assert sorted(p.name for p in written[1].iterdir()) == ["0.png", "1.png"]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["interpolate=test"], "interpolate= does not apply to model=dae"),
        (["label=3"], "label= does not apply to model=dae"),
        (["noise_factor=[0.1,-0.3]"], r"noise_factor=-0\.3 must be a number >= 0"),
    ],
)
def test_sample_options_a_denoiser_cannot_take_are_refused(run_dir, tmp_path, overrides, match):
    with pytest.raises(GenlabError, match=match):
        sample(compose_config("sample", [f"run={run_dir}", *overrides], tmp_path))


def test_eval_reports_psnr_and_ssim_per_noise_factor(run_dir, tmp_path):
    cfg = compose_config("eval", [f"run={run_dir}", "n=40", "noise_factor=[0.1,0.5]"], tmp_path / "eval")
    result = evaluate(cfg)["metrics"]
    assert result["noise_factors"] == [0.1, 0.5] and result["n"] == 40 and result["split"] == "test"
    for key in ("psnr_noisy", "psnr_denoised", "ssim_noisy", "ssim_denoised"):
        assert len(result[key]) == 2
    with pytest.raises(GenlabError, match="metrics=fid is not a metric of a denoising model"):
        Run.load(run_dir, device="cpu").evaluate(n=10, metrics=["fid"])
