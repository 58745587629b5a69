"""The EMA on torch's AveragedModel: warm-up, decay per update or per images seen, BatchNorm statistics averaged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.models.ema import EMA, warmup_decay


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def perturb(module: nn.Module, seed: int) -> None:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p))
    module.train()(torch.randn(8, 3) * 3 + seed)  # moves BatchNorm's running statistics


def test_first_update_copies_then_each_update_lerps_with_the_warmed_up_decay():
    live = net()
    ema = EMA(live, decay=0.999)
    perturb(live, 1)
    ema.update(live)  # n_averaged 0 → 1: an exact copy
    assert torch.equal(ema.module[0].weight, live[0].weight)
    before = {k: v.clone() for k, v in ema.module.state_dict().items()}
    perturb(live, 2)
    ema.update(live)
    decay = warmup_decay(0.999, 1)
    assert decay == pytest.approx(2 / 11)
    for key, value in ema.module.state_dict().items():
        current = live.state_dict()[key]
        if value.is_floating_point():  # weights and BatchNorm statistics alike
            torch.testing.assert_close(value, before[key] + (current - before[key]) * (1 - decay))
        else:
            assert torch.equal(value, current)  # num_batches_tracked is copied
    assert int(ema.n_averaged) == 2


def test_half_life_in_images_makes_the_decay_follow_the_batch_size():
    live = net()
    ema = EMA(live, half_life_images=1000)
    for _ in range(200):  # past the warm-up: (1 + n) / (10 + n) > 0.5^(B / H) for both batch sizes below
        ema.update(live, images=64)
    before = ema.module[0].weight.clone()
    perturb(live, 3)
    ema.update(live, images=64)
    torch.testing.assert_close(ema.module[0].weight, before + (live[0].weight - before) * (1 - 0.5 ** (64 / 1000)))
    before = ema.module[0].weight.clone()
    ema.update(live, images=256)  # four times the images: the old weights count 0.5^(256/1000)
    torch.testing.assert_close(ema.module[0].weight, before + (live[0].weight - before) * (1 - 0.5 ** (256 / 1000)))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"decay": 1.0}, "model.ema_decay=1.0"),
        ({"half_life_images": 0}, "model.ema_half_life_images=0"),
        ({"decay": 0.9, "half_life_images": 10}, "one of model.ema_decay and model.ema_half_life_images"),
        ({}, "one of model.ema_decay"),
    ],
)
def test_bad_settings_are_refused(kwargs, needle):
    with pytest.raises(GenlabError, match=needle.replace(".", r"\.")):
        EMA(net(), **kwargs)


def test_the_average_stays_in_eval_mode_and_has_no_gradients():
    ema = EMA(net(), decay=0.9)
    ema.train()
    assert not ema.training and not ema.module.training
    assert not any(p.requires_grad for p in ema.parameters())


@pytest.mark.parametrize(
    ("model", "ema"),
    [("dcgan", lambda m: m.generator_ema), ("ddpm", lambda m: m.ema_net)],
)
def test_models_key_their_ema_on_images_seen_when_a_half_life_is_set(cfg_factory, model, ema):
    """model.ema_half_life_images replaces ema_decay: after a step of batch B the decay is 0.5^(B / N)."""
    from conftest import FAST, TINY_DDPM
    from pytorch_lightning import Trainer

    from genlab.build import instantiate_datamodule, instantiate_model

    tiny = (
        TINY_DDPM if model == "ddpm" else ["data.image_size=16", "model.generator.ngf=8", "model.discriminator.ndf=8"]
    )
    cfg = cfg_factory("train", [f"model={model}", *FAST, *tiny, "data.batch_size=16", "model.ema_half_life_images=320"])
    module = instantiate_model(cfg)
    assert ema(module).half_life_images == 320 and ema(module).decay is None
    trainer = Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        limit_val_batches=0,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=instantiate_datamodule(cfg))
    assert int(ema(module).n_averaged) == 2
    assert ema(module)._current == pytest.approx(0.5 ** (16 / 320))


def test_ddpm_samples_with_the_live_net_when_asked(cfg_factory):
    """sample ema=false: the live ε-net samples (and SDEdit edits); the EMA net is the default; ema=1 is refused."""
    from conftest import FAST, TINY_DDPM

    from genlab.build import instantiate_model

    module = instantiate_model(cfg_factory("train", ["model=ddpm", *FAST, *TINY_DDPM])).eval()
    with torch.no_grad():
        for p in module.net.parameters():
            p.add_(0.05 * torch.randn_like(p))  # the live net now differs from its average

    def draw(**options):
        return module.generate(4, generator=torch.Generator().manual_seed(0), sampler="ddim", steps=5, **options)

    live, averaged = draw(ema=False), draw()
    assert not torch.allclose(live, averaged)
    assert torch.equal(averaged, draw(ema=True))
    with torch.no_grad():
        for p in module.ema_net.module.parameters():
            p.zero_()
    assert torch.equal(live, draw(ema=False))  # the EMA weights play no part in live sampling
    images = torch.zeros(2, *module.image_shape)
    edited = module.edit(images, 0.5, generator=torch.Generator().manual_seed(1), ema=False)
    assert edited.shape == images.shape and "ema" in module.generation_options()
    with pytest.raises(GenlabError, match="ema=1 must be true or false"):
        draw(ema=1)
