"""model.prediction (eps | v | x0) and model.loss_weighting (none | min_snr) wired into DiffusionModule: the loss
against the papers' formulas, the ε every sampler sees (guidance included), exact predictors of each type sampled
through the module with every sampler, and tiny trainings per objective that lower the loss and sample in range."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_DDPM
from gaussian_data import SHAPE, exact_eps
from omegaconf import open_dict
from torch import nn

from genlab.build import instantiate_datamodule, instantiate_model
from genlab.diffusion.prediction import PREDICTIONS, Objective, alpha_sigma, training_target
from genlab.diffusion.samplers import make_sampler
from genlab.diffusion.schedules import CosineSchedule
from genlab.errors import GenlabError
from genlab.models.ddpm import DiffusionModule

SAMPLERS = {"ddpm": {}, "ddim": {"steps": 10}, "dpm_solver": {"steps": 8}, "heun": {"steps": 9}}
OBJECTIVES = [("eps", "none"), ("v", "none"), ("x0", "none"), ("eps", "min_snr"), ("v", "min_snr"), ("x0", "min_snr")]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny(cfg_factory, *overrides: str, model: str = "ddpm") -> DiffusionModule:
    torch.manual_seed(0)
    return instantiate_model(cfg_factory("train", [f"model={model}", *TINY_DDPM, *overrides]))


@pytest.mark.parametrize(("prediction", "weighting"), OBJECTIVES)
def test_the_loss_is_the_papers_weighted_mse_on_the_target(cfg_factory, prediction, weighting):
    model = tiny(cfg_factory, "schedule.timesteps=100", f"model.prediction={prediction}")
    model.objective = Objective(prediction, weighting, 3.0)
    x0 = torch.rand(6, 1, 16, 16, generator=gen(1)) * 2 - 1
    loss = model.diffusion_loss(model.net, x0, None, gen(2))
    draws = gen(2)  # the same draws as diffusion_loss: t, then ε
    t = torch.randint(0, 100, (6,), generator=draws)
    noise = torch.randn(x0.shape, generator=draws)
    ab = model.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    with torch.no_grad():
        output = model.net(ab.sqrt() * x0 + (1 - ab).sqrt() * noise, t)
        target = {"eps": noise, "v": ab.sqrt() * noise - (1 - ab).sqrt() * x0, "x0": x0}[prediction]
        snr = (ab / (1 - ab)).flatten()
        weight = {"eps": snr.clamp(max=3) / snr, "v": snr.clamp(max=3) / (snr + 1), "x0": snr.clamp(max=3)}
        per_image = ((output - target) ** 2).mean((1, 2, 3))
        expected = (weight[prediction] * per_image).mean() if weighting == "min_snr" else F.mse_loss(output, target)
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-4, atol=1e-6)


def test_a_config_saved_without_the_keys_is_an_eps_run(cfg_factory):
    cfg = cfg_factory("train", ["model=ddpm", *TINY_DDPM])
    with open_dict(cfg):
        for key in ("prediction", "loss_weighting", "min_snr_gamma"):
            del cfg.model[key]
    model = instantiate_model(cfg)
    assert model.objective == Objective("eps", "none", 5.0)
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([3, 7])
    with torch.no_grad():
        assert torch.equal(model.denoiser(None)(x, t), model.ema_net.module(x, t))


@pytest.mark.parametrize("prediction", ["v", "x0"])
def test_the_denoiser_converts_the_net_output_to_eps(cfg_factory, prediction):
    model = tiny(cfg_factory, f"model.prediction={prediction}")
    x, t = torch.randn(3, 1, 16, 16, generator=gen(0)), torch.tensor([0, 4, 9])
    a = model.schedule.sqrt_alphas_cumprod[t].view(-1, 1, 1, 1)
    s = model.schedule.sqrt_one_minus_alphas_cumprod[t].view(-1, 1, 1, 1)
    with torch.no_grad():
        out = model.ema_net.module(x, t)
        expected = s * x + a * out if prediction == "v" else (x - a * out) / s
        torch.testing.assert_close(model.denoiser(None)(x, t), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_guidance_mixes_the_eps_of_every_prediction_type(cfg_factory, prediction):
    model = tiny(cfg_factory, f"model.prediction={prediction}", model="cddpm")
    x, t, y = torch.randn(2, 1, 16, 16, generator=gen(0)), torch.tensor([5, 8]), torch.tensor([3, 4])
    with torch.no_grad():
        cond = model.denoiser(y, 1.0)(x, t)
        null = model.denoiser(torch.tensor([10, 10]), 1.0)(x, t)  # the null class
        if prediction != "eps":  # the ε of a plain conditional evaluation is the converted net output
            raw = model.ema_net.module(x, t, y)
            assert not torch.allclose(cond, raw)
        torch.testing.assert_close(model.denoiser(y, 3.0)(x, t), null + 3.0 * (cond - null), rtol=1e-4, atol=1e-4)


class ExactNet(nn.Module):
    """The exact output of each prediction type for the Gaussian data of gaussian_data.py (images 3×1×1)."""

    def __init__(self, schedule, prediction: str) -> None:
        super().__init__()
        self.schedule, self.prediction = schedule, prediction
        self.unused = nn.Linear(1, 1)  # a parameter for the EMA and the optimizer

    def forward(self, x, t, labels=None):
        eps = exact_eps(self.schedule)(x, t)
        alpha, sigma = alpha_sigma(self.schedule, t, x.ndim)
        return training_target(self.prediction, (x - sigma * eps) / alpha, eps, t, self.schedule)


@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_an_exact_net_of_each_type_samples_the_exact_eps_samples_through_the_module(prediction, sampler):
    schedule = CosineSchedule(50)
    model = DiffusionModule(
        net=lambda num_classes: ExactNet(schedule, prediction),
        schedule=schedule,
        optimizer=torch.optim.SGD,
        channels=SHAPE[0],
        image_size=1,
        prediction=prediction,
    )
    images = model.generate(6, generator=gen(5), sampler=sampler, **SAMPLERS[sampler])
    chosen = make_sampler(sampler, **SAMPLERS[sampler])
    reference = chosen.sample(exact_eps(schedule), schedule, (6, *SHAPE), gen(5)).clamp(-1, 1)
    torch.testing.assert_close(images, reference.float(), atol=2e-4, rtol=0)
    assert images.std() > 0.1  # samples, not a constant


@pytest.mark.parametrize(("prediction", "weighting"), [OBJECTIVES[1], *OBJECTIVES[3:]])
def test_each_objective_trains_and_samples_with_every_sampler(cfg_factory, prediction, weighting):
    overrides = ["schedule.timesteps=100", "model.optimizer.lr=0.003"]
    cfg = cfg_factory("train", ["model=ddpm", *TINY_DDPM, *overrides])
    cfg.model.prediction, cfg.model.loss_weighting = prediction, weighting
    torch.manual_seed(0)
    model = instantiate_model(cfg)
    images, _ = instantiate_datamodule(cfg).dataset("train")[list(range(8))]
    optimizer = model.configure_optimizers()

    def loss() -> float:
        with torch.no_grad():
            return sum(model.diffusion_loss(model.net, images, None, gen(i)).item() for i in range(4))

    before = loss()
    for _ in range(25):
        optimizer.zero_grad()
        model.diffusion_loss(model.net, images, None).backward()
        optimizer.step()
        model.ema_net.update(model.net)
    assert loss() < 0.7 * before
    for sampler, options in SAMPLERS.items():
        samples = model.generate(4, generator=gen(1), sampler=sampler, **options)
        assert samples.shape == (4, 1, 16, 16) and torch.isfinite(samples).all(), sampler
        assert samples.abs().max() <= 1 and samples.std() > 0, sampler


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("model.prediction=score", "model.prediction=score is not a prediction type: choose one of eps, v, x0"),
        ("model.loss_weighting=snr", "model.loss_weighting=snr is not a loss weighting"),
        ("model.min_snr_gamma=0", "model.min_snr_gamma=0 must be a number > 0"),
        ("model.min_snr_gamma=-5", "model.min_snr_gamma=-5 must be a number > 0"),
    ],
)
def test_bad_objectives_are_refused_naming_the_option(cfg_factory, override, needle):
    with pytest.raises(Exception) as info:
        tiny(cfg_factory, "model.loss_weighting=min_snr", override)
    error = info.value.__cause__ or info.value
    assert isinstance(error, GenlabError) and needle in str(error)


def test_sampling_as_another_prediction_type_is_refused(cfg_factory):
    model = tiny(cfg_factory, "model.prediction=v")
    assert model.resolve_sampler("ddim", steps=3, prediction="v").steps == 3
    for other in ("eps", "x0", "score"):
        with pytest.raises(GenlabError, match=f"prediction={other} contradicts this run: .*model.prediction=v"):
            model.generate(1, sampler="ddim", steps=3, prediction=other)
