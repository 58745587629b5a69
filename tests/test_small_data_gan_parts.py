"""Hinge loss against its formulas; spectral norm: σ_max ≈ 1 per normalised weight, refused combinations."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torch import nn
from torch.nn.utils import parametrize

from genlab.build import instantiate_model
from genlab.errors import GenlabError
from genlab.models.losses import HingeLoss
from genlab.nets.dcgan import DCGANDiscriminator
from genlab.nets.gan_heads import MulticlassHead, RealFakeHead
from genlab.nets.mlp_gan import MLPDiscriminator


def logits_as_d(x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """A "discriminator" whose output is its input: the test hands it logits."""
    return x


def test_hinge_losses_match_their_formulas_on_hand_made_logits():
    real = torch.tensor([2.0, 0.5, -1.0], requires_grad=True)
    fake = torch.tensor([-3.0, 0.2, -0.5], requires_grad=True)
    loss = HingeLoss()
    loss_d, out_real, out_fake = loss.discriminator_loss(logits_as_d, real, fake, None)
    # mean(relu(1 − [2, .5, −1])) + mean(relu(1 + [−3, .2, −.5])) = (0 + .5 + 2)/3 + (0 + 1.2 + .5)/3
    assert loss_d.item() == pytest.approx(4.2 / 3)
    assert out_real is real and out_fake is fake
    loss_d.backward()
    torch.testing.assert_close(real.grad, torch.tensor([0.0, -1 / 3, -1 / 3]))  # only margin violators count
    torch.testing.assert_close(fake.grad, torch.tensor([0.0, 1 / 3, 1 / 3]))
    loss_g, _ = loss.generator_loss(logits_as_d, fake, None)
    assert loss_g.item() == pytest.approx(3.3 / 3)  # −mean(fake): not clipped at the margin
    assert loss.score(real).item() == pytest.approx(0.5) and loss.d_outputs(10) == 1


def normalised_layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if parametrize.is_parametrized(m, "weight")]


def sigma(weight: torch.Tensor) -> float:
    """Largest singular value of the weight as torch normalises it: (out, in·k·k)."""
    return torch.linalg.matrix_norm(weight.detach().reshape(weight.shape[0], -1), 2).item()


@pytest.mark.parametrize(
    ("make", "layers", "channels", "size"),
    [
        (lambda: DCGANDiscriminator(8, 3, 32, batch_norm=False, spectral_norm=True), 4, 3, 32),  # 3 convs + head
        (lambda: DCGANDiscriminator(8, 1, 16, False, lambda f: RealFakeHead(f, 10), spectral_norm=True), 4, 1, 16),
        (lambda: DCGANDiscriminator(8, 1, 16, False, lambda f: MulticlassHead(f, 10), spectral_norm=True), 3, 1, 16),
        (lambda: MLPDiscriminator(1, 16, hidden=(64, 32), spectral_norm=True), 3, 1, 16),
    ],
)
def test_spectral_norm_makes_every_weight_have_sigma_one(make, layers, channels, size):
    torch.manual_seed(0)
    net = make().train()
    found = normalised_layers(net)
    assert len(found) == layers
    assert all(abs(sigma(m.parametrizations.weight.original) - 1) > 0.05 for m in found)  # the raw weights are not
    images, labels = torch.randn(4, channels, size, size), torch.tensor([0, 3, 5, 9])
    for _ in range(30):  # one power iteration per training forward
        net(images, labels)
    for m in found:
        assert sigma(m.weight) == pytest.approx(1.0, abs=0.01)


def test_projection_embedding_is_normalised_too():
    net = DCGANDiscriminator(8, 1, 16, batch_norm=False, head=lambda f: RealFakeHead(f, 10), spectral_norm=True)
    assert parametrize.is_parametrized(net.head.embed, "weight")
    assert parametrize.is_parametrized(net.head.linear, "weight")


def test_without_spectral_norm_nothing_is_parametrized():
    for net in (DCGANDiscriminator(8, 1, 16), MLPDiscriminator(1, 16, hidden=(8,))):
        assert normalised_layers(net) == []


def test_spectral_norm_with_batch_norm_is_refused():
    with pytest.raises(GenlabError, match=r"model\.discriminator\.batch_norm=false"):
        DCGANDiscriminator(8, 1, 16, spectral_norm=True)  # DCGAN's D has BatchNorm by default
    with pytest.raises(GenlabError, match=r"spectral_norm=true with model\.discriminator\.batch_norm=true"):
        MLPDiscriminator(1, 16, hidden=(8,), batch_norm=True, spectral_norm=True)


class MeanHead(nn.Module):
    """A head with no weights: nothing for spectral norm to act on."""

    def __init__(self, in_features: int) -> None:
        super().__init__()

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return features.mean(dim=1)


def test_spectral_norm_with_a_head_without_layers_is_refused():
    with pytest.raises(GenlabError, match="the head MeanHead has no Linear"):
        MLPDiscriminator(1, 16, hidden=(8,), head=MeanHead, spectral_norm=True)


def test_hinge_yaml_and_spectral_norm_compose_into_a_dcgan(cfg_factory):
    overrides = ["model=dcgan", "model/loss=hinge", "model.discriminator.batch_norm=false"]
    cfg = cfg_factory("train", [*overrides, "model.discriminator.spectral_norm=true", "data.image_size=16"])
    assert isinstance(instantiate(cfg.model.loss), HingeLoss) and cfg.model.n_critic == 1
    model = instantiate_model(cfg)
    assert isinstance(model.loss, HingeLoss) and len(normalised_layers(model.discriminator)) == 3
