"""Metric formulas against closed forms and float64 numpy/scipy references; feature conventions; caches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from conftest import compose_config
from eval_fixtures import TINY_CLASSIFIER, eval_cache, inception_weights_file, runs  # noqa: F401
from hydra.utils import instantiate

from genlab.errors import GenlabError
from genlab.metrics import scores
from genlab.metrics.evaluate import default_metrics, resolve_metrics
from genlab.metrics.features import FeatureNetwork, InceptionFeatures, file_digest, to_uint8, uint8_to_model_range
from genlab.metrics.real_stats import real_features, stats_key, stats_path
from genlab.metrics.reference import check_matches
from genlab.scoring.reference import load_given_classifier, reference_classifier, reference_datamodule, signature
from genlab.scoring.scorers import generative_scorer


def with_moments(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Transform samples so their sample mean and (unbiased) sample covariance are exactly mean, cov."""
    centred = x - x.mean(0)
    whiten = np.linalg.inv(np.linalg.cholesky(np.cov(centred, rowvar=False)))
    return centred @ whiten.T @ np.linalg.cholesky(cov).T + mean


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The textbook float64 reference: |mu1 - mu2|^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2))."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_equals_the_closed_form_of_two_known_gaussians():
    rng = np.random.default_rng(0)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    var1, var2 = rng.uniform(0.5, 2, size=d), rng.uniform(0.5, 2, size=d)
    a = with_moments(rng.normal(size=(500, d)), mu1, np.diag(var1))
    b = with_moments(rng.normal(size=(400, d)), mu2, np.diag(var2))
    closed_form = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum()
    assert scores.fid(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(closed_form, rel=1e-4)
    assert scores.fid(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(0, abs=1e-6)


def test_fid_matches_a_float64_scipy_reference_on_random_features():
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(32, 32))
    a = rng.normal(size=(300, 32)) @ mixing
    b = rng.normal(size=(250, 32)) @ (mixing + 0.3 * rng.normal(size=(32, 32))) + 0.5
    got = scores.fid(torch.from_numpy(a).float(), torch.from_numpy(b).float())
    assert got == pytest.approx(scipy_frechet(a.astype(np.float32), b.astype(np.float32)), rel=1e-4)


def test_fid_refuses_fewer_samples_than_dimensions_and_suggests_kid():
    with pytest.raises(GenlabError, match=r"n > d.*KID"):
        scores.fid(torch.randn(100, 16), torch.randn(10, 16))


def test_kid_matches_the_unbiased_mmd_with_a_cubic_kernel():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 8)), rng.normal(loc=0.3, size=(40, 8))
    kernel = lambda p, q: (p @ q.T / 8 + 1) ** 3  # noqa: E731
    m = len(x)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    mmd = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    mean, std = scores.kid(torch.from_numpy(x), torch.from_numpy(y), subsets=3, subset_size=40)
    assert mean == pytest.approx(mmd, rel=1e-4)
    assert std == pytest.approx(0, abs=1e-9)
    assert scores.kid(torch.from_numpy(x), torch.from_numpy(y), subsets=5, subset_size=20) == scores.kid(
        torch.from_numpy(x), torch.from_numpy(y), subsets=5, subset_size=20
    )


def test_precision_recall_detects_quality_and_mode_collapse():
    real = torch.randn(400, 4)
    assert scores.precision_recall(real, real.clone()) == (1.0, 1.0)
    precision, recall = scores.precision_recall(real, torch.randn(400, 4) + 50)
    assert precision == 0 and recall == 0
    collapsed = real[real[:, 0] > 1.0]  # only one corner of the real distribution
    precision, recall = scores.precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.5


def test_class_distribution_and_accuracy():
    balanced = scores.class_distribution(torch.arange(10).repeat(5), 10)
    assert balanced["class_coverage"] == 1.0 and balanced["class_kl"] == pytest.approx(0)
    assert balanced["class_hist"] == [0.1] * 10
    collapsed = scores.class_distribution(torch.full((50,), 3), 10)
    assert collapsed["class_coverage"] == pytest.approx(0.1)
    assert collapsed["class_kl"] == pytest.approx(math.log(10))
    # 1/(2K) = 5 %: a class with 4 % of the samples is not covered
    mostly = scores.class_distribution(torch.tensor([0] * 96 + [1] * 4), 10)
    assert mostly["class_coverage"] == pytest.approx(0.1)
    assert scores.class_accuracy(torch.tensor([1, 2, 3, 0]), torch.tensor([1, 2, 0, 0])) == 0.75


def test_images_are_quantised_the_same_way_for_every_network():
    images = torch.tensor([-1.0, -0.5, 0.0, 1.0, 1.7]).view(1, 1, 1, 5)
    assert to_uint8(images).flatten().tolist() == [0, 64, 128, 255, 255]
    assert torch.allclose(uint8_to_model_range(to_uint8(images)), torch.tensor([-1, -0.498, 0.0039, 1, 1]), atol=1e-3)


def test_inception_features_take_grey_images_as_rgb(inception_weights_file):  # noqa: F811
    network = InceptionFeatures(inception_weights_file)
    assert network.identity == f"inception-v3-compat:{file_digest(inception_weights_file)}"
    grey = torch.rand(2, 1, 32, 32) * 2 - 1
    features = network(grey)
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    assert torch.equal(features, network(grey.repeat(1, 3, 1, 1)))


class CountingFeatures(FeatureNetwork):
    """Mean brightness per channel, counting how often it runs."""

    name = "counting"

    def __init__(self, identity: str) -> None:
        super().__init__()
        self.identity = identity
        self.num_features = 1
        self.calls = 0

    def forward(self, images):
        self.calls += 1
        return images.mean(dim=(2, 3))


def test_real_statistics_cache_never_reuses_stale_statistics(tmp_path):
    cfg = compose_config("train", [], tmp_path / "run")
    datamodule = instantiate(cfg.data, augmentation=None, _recursive_=False)
    net = CountingFeatures("counting:aaaa")
    first = real_features(datamodule, cfg.data, "test", 50, net, tmp_path, torch.device("cpu"))
    calls = net.calls
    again = real_features(datamodule, cfg.data, "test", 50, net, tmp_path, torch.device("cpu"))
    assert net.calls == calls and torch.equal(first, again)  # cache hit
    # every part of the key leads to another file: n, split, feature network, image size
    other = CountingFeatures("counting:bbbb")
    assert len(real_features(datamodule, cfg.data, "test", 40, net, tmp_path, torch.device("cpu"))) == 40
    real_features(datamodule, cfg.data, "val", 50, net, tmp_path, torch.device("cpu"))
    real_features(datamodule, cfg.data, "test", 50, other, tmp_path, torch.device("cpu"))
    assert net.calls > calls and other.calls > 0
    resized = compose_config("train", ["data.image_size=16"], tmp_path / "run").data
    fp = datamodule.fingerprint("test")
    keys = [stats_key(cfg.data, "test", net, 50, fp), stats_key(resized, "test", net, 50, fp)]
    assert stats_path(tmp_path, keys[0]) != stats_path(tmp_path, keys[1])
    # a file holding another key (e.g. copied by hand) is recomputed, not trusted
    path = stats_path(tmp_path, keys[0])
    blob = torch.load(path, weights_only=True)
    torch.save({"key": {**blob["key"], "n": 49}, "features": blob["features"]}, path)
    calls = net.calls
    real_features(datamodule, cfg.data, "test", 50, net, tmp_path, torch.device("cpu"))
    assert net.calls > calls
    assert len(list((tmp_path / "real_stats").glob("*.pt"))) == 4


@pytest.mark.slow
def test_real_vs_real_fid_is_near_zero_and_noise_is_far(eval_cache):  # noqa: F811
    cfg = compose_config("train", TINY_CLASSIFIER, eval_cache / "unused")
    classifier = reference_classifier(cfg.data, cfg.eval, eval_cache, torch.device("cpu"))
    datamodule = instantiate(cfg.data, augmentation=None, _recursive_=False)
    images = torch.cat([batch for batch, _ in datamodule.dataloader("train")])
    half = len(images) // 2
    first, second = classifier(images[:half]), classifier(images[half : 2 * half])
    noise = classifier(torch.rand_like(images[:half]) * 2 - 1)
    real_vs_real, real_vs_noise = scores.fid(first, second), scores.fid(first, noise)
    assert real_vs_real < 0.02 * real_vs_noise
    spread = first.double().var(dim=0).sum().item()  # FID of unrelated sets is of this order
    assert real_vs_real < 0.05 * spread


def test_default_metrics_follow_the_model_and_dataset():
    assert default_metrics(False, 10) == ["fid", "kid", "precision_recall", "class_hist", "memorisation"]
    assert default_metrics(True, 10)[-2:] == ["class_acc", "memorisation"]
    assert default_metrics(False, 0) == ["fid", "kid", "precision_recall", "memorisation"]
    with pytest.raises(GenlabError, match="class_acc needs a conditional model"):
        resolve_metrics(["class_acc"], False, 10)
    with pytest.raises(GenlabError, match="metrics=bleu"):
        resolve_metrics(["bleu"], False, 10)


@pytest.mark.slow
def test_conditional_samples_get_class_accuracy(eval_cache, tmp_path):  # noqa: F811
    from replay_generator import ReplayGenerator

    cfg = compose_config("train", TINY_CLASSIFIER, tmp_path / "run")
    model = ReplayGenerator(1, 32, 10, conditional=True)
    datamodule = instantiate(cfg.data, augmentation=None, _recursive_=False)
    scorer = generative_scorer(
        cfg.data, cfg.eval, split="test", features=None, metrics=["class_acc", "kid"], n=300,
        cache_dir=eval_cache, device=torch.device("cpu"), datamodule=datamodule,
    )  # fmt: skip
    metrics, grid = scorer.score(model, seed=0)
    # replayed training digits of the requested classes: about as accurate as the (tiny, 2-epoch)
    # classifier is on the test split, and far above noise (chance is 0.1)
    assert metrics["class_acc"] > 0.7 * metrics["reference_classifier_test_acc"]
    assert grid.shape == (64, 1, 32, 32)
    noise = ReplayGenerator(1, 32, 10, mode="noise", conditional=True)
    assert scorer.score(noise, seed=0)[0]["class_acc"] < 0.5 * metrics["class_acc"]


@pytest.mark.slow
def test_classifier_from_a_cnn_run_must_match_the_dataset(runs):  # noqa: F811
    classifier = load_given_classifier(runs["cnn16"])
    assert classifier.identity.startswith("classifier:") and classifier.info["image_size"] == 16

    def wanted(overrides):
        data = compose_config("train", overrides, runs["cnn16"]).data
        return signature(data, reference_datamodule(data))

    check_matches(classifier, wanted(["data.image_size=16"]), "x")
    with pytest.raises(GenlabError, match=r"image_size=16 \(needed 32\)"):
        check_matches(classifier, wanted([]), "eval.classifier=x")
