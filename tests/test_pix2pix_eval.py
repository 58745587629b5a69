"""Scoring of pix2pix translations: L1/PSNR/SSIM and FID of G(A) against the targets B in the
target domain's feature network (the end-to-end ``genlab eval`` is in test_pix2pix.py)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import FAST, compose_config
from eval_fixtures import TINY_CLASSIFIER, eval_cache  # noqa: F401

from genlab.build import instantiate_datamodule
from genlab.errors import GenlabError
from genlab.metrics.translation import TRANSLATION_METRICS, TranslationScorer, resolve_translation_metrics
from genlab.scoring.scorers import target_domain, translation_scorer
from genlab.tasks.train import train

CPU = torch.device("cpu")


def make_scorer(cfg, cache, n: int = 10_000, metrics=TRANSLATION_METRICS, features=None) -> TranslationScorer:
    datamodule = instantiate_datamodule(cfg, train=False)
    return translation_scorer(
        cfg.data, cfg.eval, split="test", features=features, metrics=metrics, n=n,
        cache_dir=cache, device=CPU, datamodule=datamodule,
    )  # fmt: skip


@pytest.fixture(scope="module")
def edges2digits(eval_cache, tmp_path_factory):  # noqa: F811
    """(config, test pairs) of edges2digits, scored with the session's tiny digits classifier."""
    overrides = ["model=pix2pix", "data=edges2digits", *TINY_CLASSIFIER]
    cfg = compose_config("train", overrides, tmp_path_factory.mktemp("pix2pix_eval") / "run")
    datamodule = instantiate_datamodule(cfg, train=False)
    pairs = list(datamodule.dataloader("test"))
    return cfg, pairs


def test_fid_of_a_perfect_translator_is_zero_and_corrupted_translations_score_worse(edges2digits, eval_cache):  # noqa: F811
    cfg, pairs = edges2digits
    scorer = make_scorer(cfg, eval_cache)
    # the dataset's feature network for digit targets: the digits reference classifier
    assert target_domain(cfg.data).name == "digits"
    assert scorer.network.name == "classifier" and scorer.network.info["data"] == "digits"

    targets_as_inputs = [(b, b) for _, b in pairs]
    torch.manual_seed(0)
    perfect = scorer.score(lambda x: x, targets_as_inputs)
    blurred = scorer.score(lambda x: torch.nn.functional.avg_pool2d(x, 5, 1, 2), targets_as_inputs)
    noisy = scorer.score(lambda x: (x + 0.5 * torch.randn_like(x)).clamp(-1, 1), targets_as_inputs)
    edges = scorer.score(lambda x: x, pairs)  # "translating" A into itself: edge maps against digits
    assert perfect["n"] == noisy["n"] == 359
    assert abs(perfect["fid"]) < 1e-6 and perfect["l1"] == 0 and perfect["ssim"] == pytest.approx(1)
    assert 0.5 < blurred["fid"] < noisy["fid"] and edges["fid"] > 0.5
    assert min(blurred["l1"], noisy["l1"], edges["l1"]) > 0.05
    assert perfect["features"] == "classifier" and perfect["feature_data"] == "digits"
    assert perfect["feature_network"] == scorer.network.identity and perfect["feature_dim"] == 16


def test_n_caps_the_pairs_and_too_few_pairs_for_fid_say_what_to_do(edges2digits, eval_cache):  # noqa: F811
    cfg, pairs = edges2digits
    scored = make_scorer(cfg, eval_cache, n=40).score(lambda x: x, pairs)
    assert scored["n"] == 40 and math.isfinite(scored["fid"])
    needle = r"n > d.*n = 10 of the 359 pairs.*d = 16: raise n .*metrics=\[l1,psnr,ssim\]"
    with pytest.raises(GenlabError, match=needle):
        make_scorer(cfg, eval_cache, n=10)
    without_fid = make_scorer(cfg, eval_cache, n=10, metrics=["l1", "psnr", "ssim"]).score(lambda x: x, pairs)
    assert "fid" not in without_fid and without_fid["n"] == 10 and "features" not in without_fid


def test_metrics_option_of_translation_runs():
    assert resolve_translation_metrics(None) == ["l1", "psnr", "ssim", "fid"]
    assert resolve_translation_metrics("fid") == ["fid"]
    with pytest.raises(GenlabError, match="metrics=kid is not a metric of image translation"):
        resolve_translation_metrics(["l1", "kid"])


def test_paired_folder_defaults_to_inception_and_explains_missing_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cfg = compose_config("train", ["model=pix2pix", "data=paired_folder", "eval.download=false"], tmp_path / "run")
    needle = r"Inception-v3 FID weights.*data=paired_folder have no labels\.\) .* without FID: metrics=\[l1,psnr,ssim\]"
    with pytest.raises(GenlabError, match=needle):
        make_scorer(cfg, tmp_path)
    with pytest.raises(GenlabError, match="needs a labelled dataset"):
        make_scorer(cfg, tmp_path, features="classifier")


def test_train_scores_the_translations_at_the_end(eval_cache, tmp_path):  # noqa: F811
    overrides = ["model=pix2pix", "data=edges2digits", "model.generator.ngf=8", "model.discriminator.ndf=8"]
    cfg = compose_config("train", [*FAST, *overrides, *TINY_CLASSIFIER, "logger=none", "eval.n_at_end=40"], tmp_path)
    cfg.paths.cache_dir = str(eval_cache)
    metrics = train(cfg)
    assert metrics["fid_n"] == 40 and metrics["fid_features"] == "classifier" and metrics["fid"] > 0
    assert metrics["fid_feature_network"].startswith("classifier:")
