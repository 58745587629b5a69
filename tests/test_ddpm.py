"""model=ddpm / cddpm: training, EMA, guidance, figures, `genlab sample` and its bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config, load_model, run_cli
from omegaconf import OmegaConf
from PIL import Image

from genlab.build import instantiate_datamodule, instantiate_model
from genlab.errors import GenlabError
from genlab.io import safe_torch_load
from genlab.tasks.train import train

T = 10
TINY = [
    f"schedule.timesteps={T}",
    "data.image_size=16",
    "model.net.base_channels=8",
    "model.net.channel_mults=[1,2]",
    "model.net.attention_resolutions=[8]",
    "callbacks.diffusion_viz.n=10",
    "callbacks.diffusion_viz.grid_steps=3",
    "callbacks.diffusion_viz.n_reconstruct=4",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, str]:
    """A tiny trained ddpm and cddpm run folder each (with the .hydra/config.yaml the CLI reads)."""
    out = {}
    for model in ("ddpm", "cddpm"):
        run_dir = tmp_path_factory.mktemp(model) / "run"
        cfg = compose_config("train", [f"model={model}", *TINY, *FAST, "logger=none"], run_dir)
        train(cfg)
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
        out[model] = str(run_dir)
    return out


def load(run: str):
    return load_model(run)


def test_training_steps_lower_the_loss_on_a_tiny_batch(cfg_factory):
    cfg = cfg_factory("train", ["model=ddpm", *TINY, "schedule.timesteps=100", "model.optimizer.lr=0.003"])
    torch.manual_seed(0)
    model = instantiate_model(cfg)
    images, _ = instantiate_datamodule(cfg).dataset("train")[list(range(8))]
    optimizer = model.configure_optimizers()

    def loss() -> float:
        with torch.no_grad():
            draws = [torch.Generator().manual_seed(i) for i in range(4)]
            return sum(model.diffusion_loss(model.net, images, None, g).item() for g in draws)

    before = loss()
    for _ in range(25):
        optimizer.zero_grad()
        model.diffusion_loss(model.net, images, None).backward()
        optimizer.step()
    assert loss() < 0.7 * before


def test_ema_follows_the_weights_and_is_in_the_checkpoint(runs):
    checkpoint = safe_torch_load(Path(runs["ddpm"]) / "checkpoints/last.ckpt")
    keys = checkpoint["state_dict"].keys()
    assert any(k.startswith("ema_net.") for k in keys) and any(k.startswith("net.") for k in keys)
    assert not any(k.startswith("schedule.") for k in keys)
    model = load(runs["ddpm"])
    ema, net = dict(model.ema_net.module.named_parameters()), dict(model.net.named_parameters())
    name = "conv_in.weight"
    assert not torch.equal(ema[name], net[name])
    updates = int(model.ema_net.n_averaged)
    assert updates == checkpoint["global_step"] > 1  # one average per optimizer step, kept in the checkpoint
    before = ema[name].clone()
    model.ema_net.update(model.net)
    decay = min(0.999, (1 + updates) / (10 + updates))  # the warm-up
    assert torch.allclose(ema[name], before + (net[name] - before) * (1 - decay), atol=1e-6)
    assert int(model.ema_net.n_averaged) == updates + 1


def test_generate_is_deterministic_and_in_range(runs):
    model = load(runs["cddpm"])
    labels = torch.tensor([0, 1, 2])
    a = model.generate(3, labels, torch.Generator().manual_seed(1), sampler="ddim", steps=4, eta=1.0)
    b = model.generate(3, labels, torch.Generator().manual_seed(1), sampler="ddim", steps=4, eta=1.0)
    c = model.generate(3, labels, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (3, 1, 16, 16)
    assert c.abs().max() <= 1


def test_guidance_mixes_conditional_and_null_predictions(runs):
    model = load(runs["cddpm"])
    x, t, y = torch.randn(2, 1, 16, 16), torch.tensor([5, 5]), torch.tensor([3, 4])
    cond, null = model.ema_net.module(x, t, y), model.ema_net.module(x, t, torch.tensor([10, 10]))

    def as_eps(output):  # the net's output (of type model.prediction) as ε
        return model.objective.eps_fn(lambda x_t, t_: output, model.schedule)(x, t)

    mixed = as_eps(null + 3.0 * (cond - null))
    torch.testing.assert_close(model.denoiser(y, 3.0)(x, t), mixed, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(model.denoiser(y, 1.0)(x, t), as_eps(cond))


def test_non_gaussian_noise_dist_is_refused(cfg_factory):
    cfg = cfg_factory("train", ["model=ddpm", *TINY, "noise_dist=truncated_normal"])
    with pytest.raises(Exception) as info:
        instantiate_model(cfg)
    assert "noise_dist=truncated_normal" in str(info.value.__cause__ or info.value)
    assert isinstance(info.value.__cause__ or info.value, GenlabError)


@pytest.mark.parametrize("model", ["ddpm", "cddpm"])
def test_fast_dev_run_writes_the_diffusion_figures(cfg_factory, model):
    cfg = cfg_factory("train", [f"model={model}", *TINY, "trainer.fast_dev_run=true", *FAST[-3:]])
    metrics = train(cfg)
    assert metrics["status"] == "completed" and "train/loss" in metrics
    samples = Path(cfg.paths.run_dir) / "samples"
    for name in ("forward.png", "reverse.png", "reconstruct.png", "epoch_0001.png"):
        assert (samples / name).is_file(), name
    cell = 16 + 2  # image + padding
    assert Image.open(samples / "forward.png").size == (11 * cell + 2, 6 * cell + 2)
    assert Image.open(samples / "reconstruct.png").size == (4 * cell + 2, 3 * cell + 2)
    rows = 10 if model == "cddpm" else 4  # cddpm: one row per class (n=10); ddpm: 3 per row
    assert Image.open(samples / "epoch_0001.png").size[1] == rows * cell + 2


def test_sample_cli_writes_a_grid_for_both_samplers(runs, tmp_path):
    args = ["sample", f"run={runs['cddpm']}", "n=4", "label=3", "sampler=ddim", "steps=3", "guidance=2"]
    result = run_cli(args, tmp_path)
    assert result.returncode == 0, result.stderr
    grids = list((Path(runs["cddpm"]) / "sample").glob("*/grid.png"))
    assert len(grids) == 1


@pytest.mark.parametrize(
    ("model", "args", "needle"),
    [
        ("ddpm", ["sampler=ddim", f"steps={T + 1}"], f"steps={T + 1}"),
        ("ddpm", ["sampler=ddim", "steps=0"], "steps=0"),
        ("ddpm", ["sampler=ddim", "eta=-0.5"], "eta=-0.5"),
        ("ddpm", ["guidance=3"], "guidance=3"),
        ("cddpm", ["label=10"], "label=10"),
    ],
)
def test_bad_sample_options_fail_with_one_clear_message(runs, tmp_path, model, args, needle):
    result = run_cli(["sample", f"run={runs[model]}", "n=2", *args], tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert needle in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["schedule.beta_end=1.5"], "schedule.beta_end=1.5"),
        (["noise_dist=uniform"], "noise_dist=uniform"),
    ],
)
def test_bad_train_options_fail_with_one_clear_message(tmp_path, args, needle):
    result = run_cli(["train", "model=ddpm", *TINY, *FAST, *args], tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert needle in result.stderr


@pytest.mark.parametrize(("max_epochs", "expected"), [(10, [1, 4, 7, 10]), (-1, [1, 4, 7, 10])])
def test_epoch_grids_keep_min_steps_between_them_and_the_last_epoch_always_gets_one(
    tmp_path, monkeypatch, max_epochs, expected
):
    """callbacks.diffusion_viz.min_steps_between: 19-step epochs with 50 steps between grids → epochs 1, 4, 7, 10;
    under a time budget (max_epochs -1) no epoch is the last, so none takes an extra grid."""
    from types import SimpleNamespace

    from genlab.callbacks.diffusion_viz import DiffusionVisualizer

    viz = DiffusionVisualizer(str(tmp_path), min_steps_between=50)
    drawn: list[int] = []

    def record(trainer, model, epoch):  # what _grid keeps, without sampling
        drawn.append(epoch)
        viz._last_grid_epoch, viz._last_grid_step = epoch, trainer.global_step

    monkeypatch.setattr(viz, "_grid", record)
    for epoch in range(10):
        trainer = SimpleNamespace(
            is_global_zero=True, current_epoch=epoch, max_epochs=max_epochs, global_step=19 * (epoch + 1)
        )
        viz.on_train_epoch_end(trainer, None)
    assert drawn == expected
    with pytest.raises(GenlabError, match="min_steps_between"):
        DiffusionVisualizer(str(tmp_path), min_steps_between=-1)
