"""VAE parts: the ELBO's terms against closed forms, Monte Carlo and torch.distributions; encoder/decoder shapes."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from genlab.data.datasets import resize_uint8
from genlab.errors import GenlabError
from genlab.models.elbo import (
    bernoulli_nll,
    check_elbo_options,
    elbo,
    gaussian_kl,
    gaussian_nll,
    kl_weight,
    reparameterize,
)
from genlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from genlab.nets.vae import ConvEncoder


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_kl_matches_its_closed_form_by_hand_and_torch_distributions():
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    # ½(1 + 1 - 1 - 0) + ½(0 + 4 - 1 - log 4) for the first image; q = p for the second.
    expected = torch.tensor([0.5 + 0.5 * (3 - math.log(4.0)), 0.0])
    assert torch.allclose(gaussian_kl(mu, logvar), expected)
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    reference = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(gaussian_kl(mu, logvar), reference, atol=1e-5)


def test_kl_matches_a_monte_carlo_estimate():
    mu = torch.tensor([[0.5, -1.0, 0.2]])
    logvar = torch.tensor([[-0.5, 0.3, -1.0]])
    z = reparameterize(mu.expand(200_000, -1), logvar.expand(200_000, -1), torch.Generator().manual_seed(0))
    log_ratio = (Normal(mu, (0.5 * logvar).exp()).log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(1)
    standard_error = log_ratio.std().item() / math.sqrt(len(log_ratio))
    assert log_ratio.mean().item() == pytest.approx(gaussian_kl(mu, logvar).item(), abs=4 * standard_error)


def test_reparameterisation_gradient_is_one_for_mu_and_eps_sigma_over_two_for_logvar():
    mu = torch.randn(4, 3, requires_grad=True)
    logvar = torch.randn(4, 3, requires_grad=True)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))  # the same ε
    sigma = (0.5 * logvar).exp()
    assert torch.allclose(z, mu + sigma * eps)
    # z_i depends on μ_i and log σ²_i only, so the gradient of Σz is the Jacobian's diagonal.
    d_mu, d_logvar = torch.autograd.grad(z.sum(), [mu, logvar])
    assert torch.equal(d_mu, torch.ones_like(mu))
    assert torch.allclose(d_logvar, eps * sigma / 2)


def test_bernoulli_nll_matches_torch_distributions_and_refuses_model_range_targets():
    logits = torch.randn(3, 1, 4, 4)
    for x01 in (torch.randint(0, 2, (3, 1, 4, 4)).float(), torch.rand(3, 1, 4, 4)):  # binary and grey levels
        reference = -Bernoulli(logits=logits, validate_args=False).log_prob(x01).flatten(1).sum(1)
        assert torch.allclose(bernoulli_nll(logits, x01), reference, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bernoulli_nll(logits, torch.rand(3, 1, 4, 4) * 2 - 1)


@pytest.mark.parametrize("sigma", [0.1, 1.0])
def test_gaussian_nll_matches_torch_distributions(sigma):
    mean, x = torch.rand(3, 2, 4, 4) * 2 - 1, torch.rand(3, 2, 4, 4) * 2 - 1
    reference = -Normal(mean, sigma).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gaussian_nll(mean, x, sigma), reference, atol=1e-4)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_sums_recon_and_weighted_kl_on_model_range_images(likelihood):
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    decoded = torch.randn(4, 1, 8, 8) if likelihood == "bernoulli" else torch.rand(4, 1, 8, 8) * 2 - 1
    mu, logvar = torch.randn(4, 5), torch.randn(4, 5)
    loss, recon, kl = elbo(x, decoded, mu, logvar, likelihood=likelihood, beta=4.0, kl_scale=0.25, sigma=0.2)
    if likelihood == "bernoulli":  # targets converted from [-1, 1] to [0, 1]
        expected = -Bernoulli(logits=decoded, validate_args=False).log_prob((x + 1) / 2).flatten(1).sum(1)
    else:
        expected = -Normal(decoded, 0.2).log_prob(x).flatten(1).sum(1)
    assert recon.item() == pytest.approx(expected.mean().item(), rel=1e-5)
    assert kl.item() == pytest.approx(gaussian_kl(mu, logvar).mean().item(), rel=1e-6)
    assert loss.item() == pytest.approx(recon.item() + 4.0 * 0.25 * kl.item(), rel=1e-6)


def test_kl_warmup_ramps_linearly_to_one():
    assert [kl_weight(step, 100) for step in (0, 25, 100, 150)] == [0.0, 0.25, 1.0, 1.0]
    assert kl_weight(0, 0) == 1.0


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"likelihood": "poisson", "beta": 1.0}, r"model\.likelihood='poisson'.*bernoulli\|gaussian"),
        ({"likelihood": "bernoulli", "beta": -0.5}, r"model\.beta=-0\.5 must be >= 0"),
        ({"likelihood": "gaussian", "beta": 1.0, "sigma": 0.0}, r"model\.sigma=0\.0 must be > 0"),
        ({"likelihood": "gaussian", "beta": 1.0, "kl_warmup_steps": -1}, r"model\.kl_warmup_steps=-1"),
    ],
)
def test_bad_elbo_options_are_refused(options, match):
    with pytest.raises(GenlabError, match=match):
        check_elbo_options(**options)


def test_elbo_refuses_negative_beta_and_unknown_likelihoods():
    args = (torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(GenlabError, match=r"model\.beta"):
        elbo(*args, beta=-1.0)
    with pytest.raises(GenlabError, match=r"model\.likelihood"):
        elbo(*args, likelihood="laplace")


@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_encoder_and_decoder_shapes_and_ranges(size, channels, num_classes):
    encoder = ConvEncoder(channels, size, latent_dim=6, ndf=8, num_classes=num_classes)
    decoder = DCGANGenerator(nz=6, ngf=8, channels=channels, image_size=size, num_classes=num_classes)
    x = torch.rand(3, channels, size, size) * 2 - 1
    labels = torch.tensor([0, 4, 9]) if num_classes else None
    mu, logvar = encoder(x, labels)
    assert mu.shape == logvar.shape == (3, 6)
    images = decoder(reparameterize(mu, logvar), labels)
    assert images.shape == x.shape
    assert images.min() >= -1 and images.max() <= 1


def test_28px_images_are_refused_and_work_once_resized_to_32():
    with pytest.raises(GenlabError, match=r"data\.image_size=28"):
        ConvEncoder(1, 28, latent_dim=4)
    mnist_like = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    x = resize_uint8(mnist_like, 32).float() / 127.5 - 1  # what data.image_size=32 delivers
    mu, _ = ConvEncoder(1, 32, latent_dim=4, ndf=8)(x)
    assert mu.shape == (2, 4)
    assert DCGANGenerator(4, 8, 1, 32)(mu).shape == x.shape


def test_encoder_is_the_dcgan_trunk_plus_two_heads():
    # Tutorial sizes (3 × 64 × 64, ndf 64): the discriminator's 2,765,568 = trunk + an 8192-weight head.
    features, latent = 512 * 16, 100
    encoder = ConvEncoder(3, 64, latent, ndf=64)
    assert count(encoder) == 2_765_568 - features + 2 * (features * latent + latent)
    # Conditional: the one-hot maps widen the first conv only (4×4 kernels, ndf outputs, no bias).
    conditional = ConvEncoder(3, 64, latent, ndf=64, num_classes=10)
    assert count(conditional) - count(encoder) == 10 * 64 * 16
    assert count(ConvEncoder(1, 32, 8, ndf=8)) == count(DCGANDiscriminator(8, 1, 32)) - 32 * 16 + 2 * (32 * 16 * 8 + 8)


def test_conditional_encoder_reads_the_label():
    encoder = ConvEncoder(1, 16, latent_dim=4, ndf=8, num_classes=10).eval()
    x = torch.rand(1, 1, 16, 16).repeat(2, 1, 1, 1) * 2 - 1
    mu, logvar = encoder(x, torch.tensor([1, 2]))
    assert not torch.allclose(mu[0], mu[1]) and not torch.allclose(logvar[0], logvar[1])
    with pytest.raises(ValueError, match="pass labels"):
        encoder(x)


@pytest.mark.parametrize("train", [True, False])
def test_decoder_logits_are_the_bernoulli_logits_of_its_images(train):
    decoder = DCGANGenerator(nz=6, ngf=8, channels=1, image_size=16).train(train)
    z = torch.randn(3, 6)
    images, logits = decoder(z), decoder(z, logits=True)
    assert torch.allclose(2 * torch.sigmoid(logits) - 1, images, atol=1e-6)
    assert logits.abs().max() > 0


def test_one_vae_step_backpropagates_into_encoder_and_decoder():
    encoder = ConvEncoder(1, 16, latent_dim=4, ndf=8, num_classes=10)
    decoder = DCGANGenerator(nz=4, ngf=8, channels=1, image_size=16, num_classes=10)
    x, labels = torch.rand(4, 1, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 3])
    mu, logvar = encoder(x, labels)
    loss, _, _ = elbo(x, decoder(reparameterize(mu, logvar), labels, logits=True), mu, logvar, kl_scale=0.5)
    loss.backward()
    for net in (encoder, decoder):
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(g.abs().sum() > 0 for g in grads)
