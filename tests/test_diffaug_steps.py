"""DiffAugment wired into the adversarial steps: what D sees in each update, gradients into G, ADA's p
in training and checkpoints, determinism, and the off switch."""

from __future__ import annotations

import pytest
import torch
from conftest import FAST, compose_config
from omegaconf import open_dict
from pytorch_lightning import Callback, seed_everything

from genlab.build import instantiate_datamodule, instantiate_model, instantiate_trainer
from genlab.models.losses import BCELoss, HingeLoss, LSGANLoss, MulticlassLoss, WGANGPLoss

TINY_DCGAN = ["model=dcgan", "data.image_size=8", "model.generator.ngf=4", "model.discriminator.ndf=4"]
TINY_PIX2PIX = ["model=pix2pix", "data=edges2digits", "model.generator.ngf=2", "model.discriminator.ndf=2"]
QUIET = ["logger=none", "trainer.log_every_n_steps=1", "data.batch_size=8"]


def build(tmp_path, overrides):
    cfg = compose_config("train", [*FAST, *QUIET, *overrides], tmp_path / "run")
    with open_dict(cfg):
        cfg.trainer.enable_checkpointing = False
    return cfg, instantiate_model(cfg), instantiate_datamodule(cfg)


def fit(cfg, model, datamodule, callbacks=()) -> None:
    instantiate_trainer(cfg, list(callbacks), []).fit(model, datamodule=datamodule)


class Spy:
    """Stands in for the augmentation: records what it is given, returns the negated images."""

    adaptive = False
    p = 1.0

    def __init__(self) -> None:
        self.calls: list[tuple[torch.Tensor, ...]] = []

    def __call__(self, *images: torch.Tensor):
        self.calls.append(images)
        out = tuple(-x for x in images)
        return out[0] if len(out) == 1 else out

    def observe(self, realness: torch.Tensor) -> None:
        pass


class Batches(Callback):
    def __init__(self) -> None:
        self.batches = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append([t.clone() for t in batch])


def d_inputs(discriminator: torch.nn.Module) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    discriminator.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    return seen


def test_gan_augments_real_and_fake_in_the_d_step_and_fake_in_the_g_step(tmp_path):
    cfg, model, datamodule = build(tmp_path, [*TINY_DCGAN, "model.diffaug=[translation]", "trainer.max_steps=1"])
    model.d_augment = spy = Spy()
    seen, batches = d_inputs(model.discriminator), Batches()
    fit(cfg, model, datamodule, [batches])
    ((real, _labels),) = batches.batches
    assert len(spy.calls) == 3 and all(len(call) == 1 for call in spy.calls)
    (d_real,), (d_fake,), (g_fake,) = spy.calls
    assert torch.equal(d_real, real) and not d_fake.requires_grad  # D step: the real batch, the detached fake
    assert g_fake.requires_grad and torch.equal(g_fake.detach(), d_fake)  # G step: the same fake, with its graph
    # D sees exactly the augmentation's output: real, fake in the D step, then fake in the G step
    assert len(seen) == 3
    assert torch.equal(seen[0], -real) and torch.equal(seen[1], -d_fake) and torch.equal(seen[2], -d_fake)


def test_pix2pix_augments_each_pair_with_one_call(tmp_path):
    cfg, model, datamodule = build(
        tmp_path, [*TINY_PIX2PIX, "model.diffaug=[cutout]", "trainer.max_steps=1", "model.grid_size=0"]
    )
    model.d_augment = spy = Spy()
    seen, batches = d_inputs(model.discriminator), Batches()
    fit(cfg, model, datamodule, [batches])
    ((inputs, targets),) = batches.batches
    assert [len(call) for call in spy.calls] == [2, 2, 2]  # (A, B), (A, G(A)) in the D step; (A, G(A)) in G's
    (a_real, b_real), (a_fake, b_fake), (a_g, b_g) = spy.calls
    assert torch.equal(a_real, inputs) and torch.equal(b_real, targets)
    assert torch.equal(a_fake, inputs) and not b_fake.requires_grad
    assert torch.equal(a_g, inputs) and b_g.requires_grad and torch.equal(b_g.detach(), b_fake)
    assert torch.equal(seen[0], torch.cat([-inputs, -targets], 1))
    assert torch.equal(seen[2], torch.cat([-inputs, -b_fake], 1))


@pytest.mark.parametrize("policy", ["[color]", "[translation]", "[cutout]", "[color,translation,cutout]"])
def test_the_generator_loss_on_augmented_fakes_has_gradients_in_every_generator_weight(tmp_path, policy):
    _, model, _ = build(tmp_path, [*TINY_DCGAN, f"model.diffaug={policy}"])
    torch.manual_seed(0)
    fake = model.generator(torch.randn(8, model.latent_dim))
    augmented = model.augment(fake)
    assert not torch.equal(augmented, fake)
    loss, _ = model.loss.generator_loss(model.discriminator, augmented, None)
    loss.backward()
    for name, parameter in model.generator.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


class AugP(Callback):
    def __init__(self) -> None:
        self.history: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.history.append(pl_module.d_augment.p)


def test_adaptive_p_rises_by_ada_steps_while_d_memorises_ten_images_and_is_saved(tmp_path):
    # 10 training images, a D with a high learning rate: it says "real" to every one of them (r_t -> 1).
    overrides = [
        *TINY_DCGAN,
        "model.discriminator.ndf=16",
        "model.optimizer_d.lr=0.002",
        "data.train_per_class=1",
        "data.batch_size=10",
        "data.epoch_size=400",
        "trainer.max_steps=40",
        "trainer.limit_train_batches=null",
        "model.diffaug=[translation,cutout]",
        "model.diffaug_p=adaptive",
        "model.ada_speed_images=400",
        "model.ada_interval=2",
    ]
    cfg, model, datamodule = build(tmp_path, overrides)
    history = AugP()
    fit(cfg, model, datamodule, [history])
    step = 10 * 2 / 400  # images per interval / speed
    assert len(history.history) == 40
    before = [0.0, *history.history[:-1]]
    increments = [round((b - a) / step, 6) for a, b in zip(before, history.history, strict=True)]
    assert set(increments) <= {0.0, 1.0, -1.0}  # p moves only at interval ends, by one ADA step
    assert history.history[-1] >= 10 * step  # ... and mostly up: D overfits
    assert model.d_augment.controller.r_t > 0.6
    checkpoint: dict = {}
    model.on_save_checkpoint(checkpoint)
    _, fresh, _ = build(tmp_path, overrides)
    assert fresh.d_augment.p == 0.0
    fresh.on_load_checkpoint({**checkpoint, "state_dict": fresh.state_dict()})
    assert fresh.d_augment.p == model.d_augment.p and fresh.d_augment.controller.r_t == model.d_augment.controller.r_t


def trained_weights(tmp_path, overrides, seed=0) -> dict[str, torch.Tensor]:
    seed_everything(seed)
    cfg, model, datamodule = build(tmp_path, [*TINY_DCGAN, *overrides])
    fit(cfg, model, datamodule)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_same_run_and_p_zero_trains_exactly_as_off(tmp_path):
    adaptive = ["model.diffaug=[color,translation,cutout]", "model.diffaug_p=adaptive", "model.ada_p_init=0.5"]
    adaptive += ["model.ada_speed_images=64", "model.ada_interval=1"]
    first, second = trained_weights(tmp_path, adaptive), trained_weights(tmp_path, adaptive)
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    off = trained_weights(tmp_path, ["model.diffaug=null"])
    zero = trained_weights(tmp_path, ["model.diffaug=[translation]", "model.diffaug_p=0.0"])
    assert all(torch.equal(off[k], zero[k]) for k in off)  # an augmentation that never fires draws nothing
    assert any(not torch.equal(off[k], first[k]) for k in off)


def test_realness_is_the_sign_of_real_for_each_loss():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 3.0], [-1.0, -1.0, 1.0]])  # K = 2 classes + "fake"
    realness = MulticlassLoss().realness(logits)
    p_fake = logits.softmax(1)[:, -1]
    torch.testing.assert_close(realness, torch.log((1 - p_fake) / p_fake))  # log-odds of real vs fake
    assert realness.sign().tolist() == [1.0, -1.0, -1.0]
    out = torch.tensor([0.7, -0.2, 0.4])
    assert torch.equal(BCELoss().realness(out), out) and torch.equal(HingeLoss().realness(out), out)
    torch.testing.assert_close(LSGANLoss().realness(out), out - 0.5)  # midway between the targets 0 and 1
    assert WGANGPLoss().realness(out) is None
