"""CycleGAN: its losses against their formulas, initialisation, step counting, checkpointed pools,
determinism, configs, and the unpaired translation scorer (CLI, sample and eval: test_cyclegan_cli.py)."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from conftest import FAST, compose_config
from hydra.utils import instantiate
from omegaconf import OmegaConf

from genlab.build import instantiate_datamodule, instantiate_model, instantiate_trainer
from genlab.errors import GenlabError
from genlab.imaging import to_unit_range
from genlab.metrics.features import ClassifierFeatures
from genlab.metrics.unpaired_translation import UnpairedTranslationScorer
from genlab.models.cyclegan import CycleGANModule
from genlab.nets.classifier import SimpleCNN
from genlab.nets.patchgan import PatchGANDiscriminator
from genlab.nets.resnet_generator import ResnetGenerator
from genlab.nets.unet import UNetGenerator
from genlab.tasks.train import train

TINY = [
    "model=cyclegan",
    "data=unpaired_edges2digits",
    "model.generator.ngf=4",
    "model.generator.n_blocks=1",
    "model.discriminator.ndf=4",
    "model.discriminator.n_layers=2",
    "data.batch_size=4",
    "logger=none",
    "model.grid_size=0",
]


def tiny_module(**kwargs) -> CycleGANModule:
    generator = partial(ResnetGenerator, image_size=16, ngf=4, n_blocks=1)
    discriminator = partial(PatchGANDiscriminator, ndf=4, n_layers=2, norm="instance")
    return CycleGANModule(generator, discriminator, torch.optim.Adam, torch.optim.Adam, 1, 1, **kwargs)


def lsgan_g(output: torch.Tensor) -> torch.Tensor:
    return ((output - 1) ** 2).mean()


# ----------------------------------------------------------------------------- losses
def test_generator_loss_terms_and_total_follow_their_formulas():
    torch.manual_seed(0)
    model = tiny_module()
    a, b = torch.rand(3, 1, 16, 16) * 2 - 1, torch.rand(3, 1, 16, 16) * 2 - 1
    step = model.generator_pass(a, b)
    g, f = model.generator_ab, model.generator_ba
    assert torch.allclose(step.fake_b, g(a)) and torch.allclose(step.fake_a, f(b))
    expected = {
        "gan_ab": lsgan_g(model.discriminator_b(g(a))),
        "gan_ba": lsgan_g(model.discriminator_a(f(b))),
        "cycle_a": (f(g(a)) - a).abs().mean(),
        "cycle_b": (g(f(b)) - b).abs().mean(),
        "identity_a": (f(a) - a).abs().mean(),
        "identity_b": (g(b) - b).abs().mean(),
    }
    for name, value in expected.items():
        assert torch.allclose(getattr(step, name), value, atol=1e-6), name
    total = expected["gan_ab"] + expected["gan_ba"] + 10 * (expected["cycle_a"] + expected["cycle_b"])
    total = total + 5 * (expected["identity_a"] + expected["identity_b"])  # λ_id = 0.5 · λ_cyc
    assert torch.allclose(step.total, total, atol=1e-5)
    # the discriminators are frozen in the generators' loss: no gradient reaches them
    step.total.backward()
    assert all(p.grad is None for p in [*model.discriminator_a.parameters(), *model.discriminator_b.parameters()])
    assert all(p.grad is not None for p in g.parameters())


def test_identity_off_and_other_weights():
    torch.manual_seed(0)
    model = tiny_module(lambda_cyc=3.0, lambda_identity=0.0)
    a, b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    step = model.generator_pass(a, b)
    assert step.identity_a == 0 and step.identity_b == 0
    assert torch.allclose(step.total, step.gan_ab + step.gan_ba + 3 * (step.cycle_a + step.cycle_b))


def test_discriminator_loss_is_half_the_lsgan_loss_of_each():
    torch.manual_seed(0)
    model = tiny_module()
    real_a, real_b, fake_a, fake_b = (torch.rand(2, 1, 16, 16) * 2 - 1 for _ in range(4))
    d = model.discriminator_loss(real_a, real_b, fake_a, fake_b)
    d_a, d_b = model.discriminator_a, model.discriminator_b
    loss_a = ((d_a(real_a) - 1) ** 2).mean() + (d_a(fake_a) ** 2).mean()
    loss_b = ((d_b(real_b) - 1) ** 2).mean() + (d_b(fake_b) ** 2).mean()
    assert torch.allclose(d["loss"], 0.5 * (loss_a + loss_b), atol=1e-6)
    assert torch.allclose(d["d_real"], 0.5 * (d_a(real_a).mean() + d_b(real_b).mean()), atol=1e-6)


def test_weights_start_from_n_0_002_with_zero_biases():
    torch.manual_seed(0)
    model = CycleGANModule(
        partial(ResnetGenerator, image_size=32, ngf=32), partial(PatchGANDiscriminator, norm="instance"),
        torch.optim.Adam, torch.optim.Adam, 1, 1,
    )  # fmt: skip
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    weights = weights.detach()
    assert abs(float(weights.std()) - 0.02) < 0.0005 and abs(float(weights.mean())) < 0.0005
    assert all(float(m.bias.abs().max()) == 0 for m in convs if m.bias is not None)
    untouched = tiny_module(init_gain=None)
    assert any(float(m.bias.abs().max()) > 0 for m in untouched.modules() if isinstance(m, torch.nn.Conv2d))


def test_directions_and_channels():
    generator = partial(ResnetGenerator, image_size=16, ngf=4, n_blocks=1)
    discriminator = partial(PatchGANDiscriminator, ndf=4, n_layers=2, norm="instance")
    model = CycleGANModule(generator, discriminator, torch.optim.Adam, torch.optim.Adam, 1, 3, lambda_identity=0)
    assert model.paired is False and model.directions == ("AtoB", "BtoA")
    assert (model.input_channels("AtoB"), model.input_channels("BtoA")) == (1, 3)
    assert model.translate(torch.zeros(2, 1, 16, 16)).shape == (2, 3, 16, 16)
    assert model.translate(torch.zeros(2, 3, 16, 16), "BtoA").shape == (2, 1, 16, 16)
    with pytest.raises(GenlabError, match="direction=CtoD is not one of AtoB, BtoA"):
        model.translate(torch.zeros(1, 1, 16, 16), "CtoD")
    with pytest.raises(GenlabError, match=r"lambda_identity=0\.5 .* A has 1 and B 3: set model\.lambda_identity=0"):
        CycleGANModule(generator, discriminator, torch.optim.Adam, torch.optim.Adam, 1, 3)


@pytest.mark.parametrize(("key", "value"), [("lambda_cyc", -1.0), ("lambda_identity", -0.5), ("pool_size", -1)])
def test_negative_weights_are_refused(key, value):
    with pytest.raises(GenlabError, match=f"{key}={value}"):
        tiny_module(**{key: value})


# ----------------------------------------------------------------------------- configs
def test_config_builds_the_paper_model_and_the_unet_option(cfg_factory):
    cfg = cfg_factory("train", ["model=cyclegan", "data=unpaired_edges2digits"])
    model = instantiate(cfg.model)
    assert isinstance(model.generator_ab, ResnetGenerator) and model.generator_ab.n_blocks == 6  # 32 px: 6 blocks
    assert (model.lambda_cyc, model.lambda_identity, model.pools["A"].size) == (10.0, 0.5, 50)
    assert model.discriminator_a.receptive_field == 70 and model.ema_ab is None
    optimizer = cfg.model.optimizer_g
    assert (optimizer.lr, list(optimizer.betas)) == (0.0002, [0.5, 0.999])
    unet = instantiate(cfg_factory("train", ["model=cyclegan", "model/generator=unet"]).model)
    assert isinstance(unet.generator_ba, UNetGenerator)
    assert not any(isinstance(m, torch.nn.Dropout | torch.nn.BatchNorm2d) for m in unet.modules())
    with_ema = instantiate(cfg_factory("train", ["model=cyclegan", "model.ema_decay=0.9"]).model)
    x = torch.zeros(1, 1, 32, 32)
    assert torch.equal(with_ema.translate(x), with_ema.ema_ab.module(x))


def test_comparison_preset_gives_both_arms_the_same_budget(cfg_factory):
    arms = {}
    for arm in ("paired", "unpaired"):
        cfg = cfg_factory("train", ["experiment=translation_paired_vs_unpaired", f"translation={arm}"])
        arms[arm] = cfg
        assert "training_clock" in cfg.callbacks
    assert (arms["paired"].model.name, arms["paired"].data.name) == ("pix2pix", "edges2digits")
    assert (arms["unpaired"].model.name, arms["unpaired"].data.name) == ("cyclegan", "unpaired_edges2digits")
    for key in ("trainer.max_epochs", "data.batch_size", "data.epoch_size", "model.generator.ngf", "seed"):
        values = {arm: OmegaConf.select(cfg, key) for arm, cfg in arms.items()}
        assert values["paired"] == values["unpaired"], (key, values)


# ----------------------------------------------------------------------------- training
def fit(tmp_path, *extra: str, seed: int = 0) -> tuple[CycleGANModule, object]:
    cfg = compose_config("train", [*TINY, *FAST, f"seed={seed}", *extra], tmp_path)
    torch.manual_seed(seed)
    from pytorch_lightning import seed_everything

    seed_everything(seed, workers=True)
    datamodule, model = instantiate_datamodule(cfg), instantiate_model(cfg)
    trainer = instantiate_trainer(cfg, [], [])
    trainer.fit(model, datamodule=datamodule)
    return model, trainer


def test_max_steps_counts_generator_updates_and_d_updates_once_a_batch(tmp_path):
    model, trainer = fit(
        tmp_path / "a", "trainer.max_steps=3", "trainer.limit_train_batches=10", "trainer.max_epochs=5"
    )
    assert trainer.global_step == 3
    optimizer_g, optimizer_d = (o.optimizer for o in model.optimizers())
    for optimizer in (optimizer_g, optimizer_d):
        assert {int(state["step"]) for state in optimizer.state.values()} == {3}
    assert len(model.pools["A"]) == len(model.pools["B"]) == 12  # 3 batches of 4 fakes, pool not yet full


def test_same_seed_same_weights(tmp_path):
    first, _ = fit(tmp_path / "a")
    second, _ = fit(tmp_path / "b")
    other, _ = fit(tmp_path / "c", seed=1)
    keys = first.state_dict().keys()
    assert all(torch.equal(first.state_dict()[k], second.state_dict()[k]) for k in keys)
    assert not all(torch.equal(first.state_dict()[k], other.state_dict()[k]) for k in keys)


def test_fast_dev_run_and_the_checkpoint_keeps_the_pools(tmp_path):
    cfg = compose_config("train", [*TINY, *FAST, "trainer.fast_dev_run=true"], tmp_path / "dev")
    assert train(cfg)["status"] == "completed"
    cfg = compose_config("train", [*TINY, *FAST, "trainer.limit_train_batches=3"], tmp_path / "run")
    metrics = train(cfg)
    assert {"test/l1", "test/psnr", "test/ssim", "test/cycle_l1_A", "test/cycle_l1_B"} <= set(metrics)
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 3
    pools = checkpoint["image_pools"]
    assert pools["A"]["images"].shape == (12, 1, 32, 32) and pools["B"]["size"] == 50
    fresh = instantiate_model(cfg)
    fresh.on_load_checkpoint(checkpoint)
    assert torch.equal(fresh.pools["B"].images, pools["B"]["images"])


# ----------------------------------------------------------------------------- the unpaired scorer
class Projection(torch.nn.Module):
    """A fixed random projection of the pixels: a 4-d feature network for FID."""

    name, identity, num_features = "projection", "projection:test", 4

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(16 * 16, 4, generator=torch.Generator().manual_seed(0)))

    def forward(self, images):
        return images.flatten(1) @ self.weight


def test_unpaired_scorer_follows_its_formulas():
    torch.manual_seed(0)
    a = torch.rand(10, 1, 16, 16) * 2 - 1
    domains = {"A": a, "B": -a}  # true pairs: B = -A
    labels = torch.arange(10) % 3
    classifier = ClassifierFeatures(SimpleCNN(1, 3, 16, widths=(4, 8)), "classifier:test", {})
    scorer = UnpairedTranslationScorer(
        Projection(), metrics=["l1", "psnr", "ssim", "fid"], n=10, sizes={"A": 10, "B": 10}, true_pairs=True,
        protocol={"split": "test", "data": "toy"}, classifier=classifier,
    )  # fmt: skip

    def translate(x, direction):
        return -0.5 * x  # half-way: L1 and the cycle error are known

    out = scorer.score(translate, lambda d: domains[d].split(4), labels)
    assert out["l1"] == pytest.approx(float((to_unit_range(-0.5 * a) - to_unit_range(-a)).abs().mean()), rel=1e-5)
    assert out["l1_BtoA"] == pytest.approx(out["l1"], rel=1e-5)
    assert out["cycle_l1_A"] == pytest.approx(float((0.25 * a - a).abs().mean()), rel=1e-5)
    assert out["cycle_l1_B"] == pytest.approx(out["cycle_l1_A"], rel=1e-5)
    predicted = classifier.features_and_logits(-0.5 * a)[1].argmax(1)
    assert out["class_acc"] == pytest.approx(float((predicted == labels).double().mean()))
    assert out["fid"] > 0 and "fid_BtoA" in out and out["true_pairs"] is True and (out["n"], out["n_B"]) == (10, 10)
    exact = scorer.score(lambda x, d: -x, lambda d: domains[d].split(4), labels)
    assert exact["l1"] == 0 and abs(exact["fid"]) < 1e-6 and exact["cycle_l1_A"] == 0
    unpaired = UnpairedTranslationScorer(
        None, metrics=["l1", "fid"], n=10, sizes={"A": 10, "B": 7}, true_pairs=False, protocol={}
    ).score(translate, lambda d: domains[d][: 10 if d == "A" else 7].split(4))
    assert "l1" not in unpaired and "fid" not in unpaired and (unpaired["n"], unpaired["n_B"]) == (10, 7)
    with pytest.raises(GenlabError, match=r"domain B .* gives 3 and the projection features have d = 4"):
        UnpairedTranslationScorer(
            Projection(), metrics=["fid"], n=10, sizes={"A": 10, "B": 3}, true_pairs=False, protocol={}
        )


def test_unpaired_splits_have_fingerprints_of_both_domains(cfg_factory):
    data = instantiate_datamodule(cfg_factory("train", ["data=unpaired_edges2digits"]), train=False)
    empty = "e3b0c44298fc1c14"  # sha256 of nothing: what a split without an images tensor used to get
    prints = {split: data.fingerprint(split) for split in ("train", "val", "test")}
    assert len(set(prints.values())) == 3 and empty not in prints.values()
    assert data.fingerprint("test") == prints["test"]
