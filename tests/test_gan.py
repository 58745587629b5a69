"""The GAN LightningModule, its losses, grids, divergence guard and `genlab sample` on GAN runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import FAST, compose_config, load_model, run_cli
from hydra.errors import InstantiationException
from omegaconf import OmegaConf
from PIL import Image
from pytorch_lightning import Callback, Trainer
from torchvision.utils import save_image

from genlab.build import instantiate_datamodule, instantiate_model
from genlab.callbacks.image_grid import ImageGrid, pick_epochs
from genlab.errors import GenlabError, TrainingDivergedError
from genlab.io import safe_torch_load
from genlab.models.gan import GANModule
from genlab.models.losses import BCELoss, MulticlassLoss, WGANGPLoss
from genlab.noise.priors import GaussianNoise, UniformNoise
from genlab.tasks.sample import sample
from genlab.tasks.train import train

TINY = {
    "gan": ["model=gan", "model.generator.hidden=[32,64]", "model.discriminator.hidden=[32]"],
    "dcgan": ["model=dcgan", "model.generator.ngf=8", "model.discriminator.ndf=8"],
    "cgan": ["model=cgan", "model.generator.ngf=8", "model.discriminator.ndf=8"],
    "cgan_multiclass": ["model=cgan", "model/head=multiclass", "model.generator.ngf=8", "model.discriminator.ndf=8"],
    "wgan_gp": ["model=gan", "model/loss=wgan_gp", "model.generator.hidden=[32]", "model.discriminator.hidden=[32]"],
}
QUIET = ["trainer.enable_progress_bar=false", "callbacks.progress_bar=null", "logger=none"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two tiny trained runs (one epoch of two batches): an MLP GAN and a cGAN (DCGAN backbone, EMA on)."""
    return {
        name: train_run([*TINY[name], *FAST, "logger=none"], tmp_path_factory.mktemp(name)) for name in ("gan", "cgan")
    }


def train_run(overrides: list[str], root: Path) -> Path:
    """Train in-process and save the config where `genlab sample` looks for it, like the CLI does."""
    run_dir = root / "run"
    cfg = compose_config("train", overrides, run_dir)
    train(cfg)
    run_dir.joinpath(".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    return run_dir


def sample_cfg(run_dir: Path, out_dir: Path, *overrides: str):
    return compose_config("sample", [f"run={run_dir}", *overrides], out_dir)


# ---- losses ------------------------------------------------------------------------------------------


def test_losses_match_their_formulas():
    torch.manual_seed(0)
    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    d = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 1))
    critic = lambda x, y: d(x).squeeze(1)  # noqa: E731
    loss, out_real, out_fake = BCELoss().discriminator_loss(critic, real, fake, None)
    expected = -(torch.log(torch.sigmoid(out_real)).mean() + torch.log(1 - torch.sigmoid(out_fake)).mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    g_loss, out = BCELoss().generator_loss(critic, fake, None)
    assert g_loss.item() == pytest.approx(-torch.log(torch.sigmoid(out)).mean().item(), rel=1e-5)  # non-saturating
    # A linear critic with weight norm w has gradient norm ‖w‖ everywhere: penalty (‖w‖ − 1)².
    w_norm = d[1].weight.norm().item()
    assert WGANGPLoss().gradient_penalty(critic, real, fake, None).item() == pytest.approx((w_norm - 1) ** 2, rel=1e-4)
    logits = torch.randn(4, 11)
    labels = torch.tensor([0, 1, 2, 3])
    d_loss, _, _ = MulticlassLoss().discriminator_loss(lambda x, y: logits, real, fake, labels)
    fake_ce = torch.nn.functional.cross_entropy(logits, torch.full((4,), 10))
    assert d_loss.item() == pytest.approx((torch.nn.functional.cross_entropy(logits, labels) + fake_ce).item())


# ---- training ----------------------------------------------------------------------------------------


class StepRecorder(Callback):
    def __init__(self) -> None:
        self.losses: list[tuple[float, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        metrics = trainer.callback_metrics
        if "train/loss_g_step" in metrics:
            self.losses.append((float(metrics["train/loss_d_step"]), float(metrics["train/loss_g_step"])))


def fit_steps(cfg_factory, variant: str, max_steps: int, *overrides: str) -> tuple[GANModule, Trainer, StepRecorder]:
    cfg = cfg_factory("train", [*TINY[variant], *overrides])
    model = instantiate_model(cfg)
    recorder = StepRecorder()
    trainer = Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,  # step metrics reach callback_metrics on logging steps (genlab.models.step_logging)
        callbacks=[recorder],
    )
    trainer.fit(model, datamodule=instantiate_datamodule(cfg))
    return model, trainer, recorder


def test_max_steps_counts_generator_updates(cfg_factory):
    model, trainer, _ = fit_steps(cfg_factory, "wgan_gp", 3)
    assert model.n_critic == 5
    assert trainer.global_step == 3
    assert model.d_updates == 15
    opt_g, opt_d = (opt.optimizer for opt in model.optimizers())
    assert next(iter(opt_g.state.values()))["step"].item() == 3
    assert next(iter(opt_d.state.values()))["step"].item() == 15


def test_a_few_steps_give_finite_changing_losses(cfg_factory):
    model, trainer, recorder = fit_steps(cfg_factory, "gan", 6)
    assert trainer.global_step == 6 and model.d_updates == 6
    assert len(recorder.losses) == 6
    assert all(math.isfinite(d) and math.isfinite(g) for d, g in recorder.losses)
    assert len({d for d, _ in recorder.losses}) > 1 and len({g for _, g in recorder.losses}) > 1
    for key in ("train/loss_d", "train/loss_g", "train/d_real", "train/d_fake"):
        assert key in trainer.callback_metrics
    assert 0 <= float(trainer.callback_metrics["train/d_real"]) <= 1


@pytest.mark.parametrize("variant", list(TINY))
def test_fast_dev_run_through_train(cfg_factory, variant):
    batches = 5 if variant == "wgan_gp" else 1  # n_critic=5: the fifth batch makes the first generator update
    cfg = cfg_factory("train", [*TINY[variant], f"trainer.fast_dev_run={batches}", *QUIET])
    metrics = train(cfg)
    assert metrics["status"] == "completed"
    assert math.isfinite(metrics["train/loss_d"]) and math.isfinite(metrics["train/loss_g"])
    assert (Path(cfg.paths.run_dir) / "samples" / "progress.png").is_file()


def test_multiclass_head_with_wgan_loss_is_refused(cfg_factory):
    cfg = cfg_factory("train", [*TINY["cgan_multiclass"], "model/loss=wgan_gp"])
    with pytest.raises(Exception, match="model/head=realfake"):
        instantiate_model(cfg)


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(cfg_factory, monkeypatch):
    calls = {"n": 0}
    original = BCELoss.generator_loss

    def flaky(self, d, fake, labels):
        calls["n"] += 1
        loss, out = original(self, d, fake, labels)
        return (loss * float("nan"), out) if calls["n"] > 2 else (loss, out)

    monkeypatch.setattr(BCELoss, "generator_loss", flaky)
    cfg = cfg_factory("train", [*TINY["gan"], *FAST, "trainer.max_epochs=3", "logger=none"])
    with pytest.raises(TrainingDivergedError, match=r"loss_g became nan at step 2"):
        train(cfg)
    run = Path(cfg.paths.run_dir)
    assert json.loads((run / "metrics.json").read_text())["status"] == "diverged"
    checkpoint = safe_torch_load(run / "checkpoints" / "last.ckpt")
    assert checkpoint["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())


# ---- run folder, grids, checkpoints ------------------------------------------------------------------


def test_grids_checkpoint_and_ema(runs, tmp_path):
    run = runs["cgan"]
    grid = Image.open(run / "samples" / "epoch_0001.png")
    assert grid.size == (8 * 34 + 2, 10 * 34 + 2)  # one row of 8 per class, 32×32 + padding
    assert (run / "samples" / "progress.png").is_file()
    checkpoint = safe_torch_load(run / "checkpoints" / "last.ckpt")
    assert any(key.startswith("generator_ema.") for key in checkpoint["state_dict"])
    state = next(v for k, v in checkpoint["callbacks"].items() if k.startswith("ImageGrid"))
    assert state["noise"].shape == (80, 100)
    assert state["labels"].tolist() == [c for c in range(10) for _ in range(8)]
    # A resumed run draws the same grid from the checkpoint's noise and weights.
    model = load_model(run)
    ema = checkpoint["state_dict"]["generator_ema.module.net.0.weight"]
    assert torch.equal(model.generator_ema.module.net[0].weight, ema)
    assert not torch.equal(model.generator.net[0].weight, ema)
    callback = ImageGrid(tmp_path)
    callback.load_state_dict(state)
    save_image(callback.render(model), tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == (run / "samples" / "epoch_0001.png").read_bytes()


def test_pick_epochs_keeps_first_and_last():
    assert pick_epochs(3, 5) == [0, 1, 2]
    assert pick_epochs(100, 5) == [0, 25, 50, 74, 99]


# ---- genlab sample -----------------------------------------------------------------------------------


def test_same_seed_gives_the_same_grid(runs, tmp_path):
    grids = [sample(sample_cfg(runs["gan"], tmp_path / f"s{i}", f"seed={seed}"))[0] for i, seed in enumerate([3, 3, 4])]
    assert grids[0].read_bytes() == grids[1].read_bytes()
    assert grids[0].read_bytes() != grids[2].read_bytes()


def test_sample_formats_truncation_and_interpolation(runs, tmp_path):
    written = sample(sample_cfg(runs["gan"], tmp_path / "npz", "n=10", "format=npz", "truncation=0.5"))
    arrays = dict(__import__("numpy").load(written[1]))
    assert arrays["images"].shape == (10, 1, 32, 32)
    written = sample(sample_cfg(runs["cgan"], tmp_path / "png", "n=6", "format=png", "label=[3,7]"))
    names = sorted(p.name for p in written[1].iterdir())
    assert names[:2] == ["00000_label3.png", "00001_label7.png"] and len(names) == 6
    grid = sample(sample_cfg(runs["cgan"], tmp_path / "lerp", "n=16", "interpolate=true", "label=5"))[0]
    assert Image.open(grid).size == (8 * 34 + 2, 2 * 34 + 2)


def test_truncated_and_interpolated_noise():
    assert GaussianNoise().truncate(0.5).sample((1000, 4)).abs().max() <= 0.5
    box = UniformNoise(-1, 1).truncate(0.3)
    assert (box.low, box.high) == (-0.3, 0.3)
    with pytest.raises(GenlabError, match="truncation"):
        UniformNoise(0.5, 1).truncate(0.2)


# ---- bad input ---------------------------------------------------------------------------------------


def assert_clear_failure(result, needle: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert needle in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("run", "args", "needle"),
    [
        ("gan", ["label=3"], "label=3"),
        ("cgan", ["label=[1,12]"], "label=12"),
        ("gan", ["truncation=0"], "truncation=0"),
        ("cgan", ["truncation=-1", "interpolate=true"], "truncation=-1"),
    ],
)
def test_bad_sample_options_fail_clearly(runs, tmp_path, run, args, needle):
    assert_clear_failure(run_cli(["sample", f"run={runs[run]}", *args], tmp_path, timeout=120), needle)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["model=dcgan", "data.image_size=40"], "image_size=40"),
        (["noise_dist=uniform", "noise_dist.low=1", "noise_dist.high=0"], "noise_dist.low"),
    ],
)
def test_bad_train_options_fail_clearly(tmp_path, args, needle):
    assert_clear_failure(run_cli(["train", *args, *FAST], tmp_path, timeout=120), needle)


def test_sample_refuses_a_run_that_is_not_a_gan(tmp_path):
    run_dir = train_run(["model=cnn", "model.net.widths=[4]", *FAST, "logger=none", "test=false"], tmp_path)
    assert_clear_failure(run_cli(["sample", f"run={run_dir}"], tmp_path, timeout=120), "cnn")


def test_dcgan_celeba_experiment_builds_the_tutorials_nets(cfg_factory):
    cfg = cfg_factory("train", ["experiment=dcgan_celeba"])
    assert (cfg.data.name, cfg.data.image_size, cfg.data.channels, cfg.trainer.max_epochs) == ("celeba", 64, 3, 5)
    model = instantiate_model(cfg)
    assert sum(p.numel() for p in model.generator.parameters()) == 3_576_704
    assert sum(p.numel() for p in model.discriminator.parameters()) == 2_765_568


@pytest.mark.slow
def test_plain_train_is_the_mlp_gan_with_grids(tmp_path):
    result = run_cli(["train", *FAST], tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    (run,) = (tmp_path / "outputs" / "train").iterdir()
    assert run.name.endswith("_gan_digits")
    assert (run / "samples" / "epoch_0001.png").is_file() and (run / "samples" / "progress.png").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and math.isfinite(metrics["train/loss_g"])


def test_cgan_refuses_a_dataset_without_labels(cfg_factory):
    with pytest.raises(InstantiationException, match="needs a labelled dataset"):
        instantiate_model(cfg_factory("train", ["model=cgan", "data=celeba"]))
