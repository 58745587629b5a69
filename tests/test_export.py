"""``genlab export``: safetensors weights that rebuild the same sampler, its config, a model card; refusals."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from conftest import TINY_DDPM, compose_config, run_cli
from eval_fixtures import eval_cache, make_run  # noqa: F401
from PIL import Image
from refusals import assert_refused, tree
from safetensors.torch import load_file

from genlab.api import Run
from genlab.tasks.export import export

TINY_DCGAN = ["model=dcgan", "model.generator.ngf=8", "model.discriminator.ndf=8", "eval.n_at_end=100"]


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory, eval_cache):  # noqa: F811
    return make_run(tmp_path_factory.mktemp("export") / "dcgan", TINY_DCGAN, eval_cache)


def run_export(run_dir, n: int = 16):
    out = run_dir / "export" / "test"
    export(compose_config("export", [f"run={run_dir}", f"n={n}", "device=cpu"], out))
    return out


def test_export_round_trips_the_ema_generator_and_writes_a_model_card(dcgan_run):
    out = run_export(dcgan_run)
    trained = Run.load(dcgan_run, "last", "cpu")
    weights = load_file(out / "model.safetensors")
    assert weights.keys() == trained.model.generator_ema.module.state_dict().keys()
    for key, value in trained.model.generator_ema.module.state_dict().items():
        assert torch.equal(weights[key], value), key  # the EMA copy, not the live generator
    assert any(not torch.equal(weights[k], v) for k, v in trained.model.generator.state_dict().items())

    exported = Run.from_export(out, device="cpu")
    assert torch.equal(exported.sample(8, seed=3).images, trained.sample(8, seed=3).images)

    # The card's plain-torch recipe: the class named in network.yaml, its arguments, the weights.
    spec = yaml.safe_load((out / "network.yaml").read_text())
    assert spec.pop("_target_") == "genlab.nets.dcgan.DCGANGenerator"
    from genlab.nets.dcgan import DCGANGenerator

    net = DCGANGenerator(**spec)
    net.load_state_dict(load_file(out / "model.safetensors"))
    z = torch.randn(8, spec["nz"], generator=torch.Generator().manual_seed(3))
    assert torch.allclose(net.eval()(z), trained.sample(8, seed=3).images, atol=1e-6)

    card = (out / "README.md").read_text()
    fid = json.loads((dcgan_run / "metrics.json").read_text())["fid"]
    assert f"| fid | {fid:.4f} |" in card and "| fid_features | classifier |" in card
    assert "![samples](samples.png)" in card and "Run.from_export" in card and "| checkpoint steps | 2 |" in card
    assert Image.open(out / "samples.png").size == (4 * 34 + 2, 4 * 34 + 2)  # 16 images of 32 px, padding 2
    assert yaml.safe_load((out / "config.yaml").read_text())["model"]["generator"]["ngf"] == 8


def test_export_of_a_conditional_diffusion_run_rebuilds_its_unet(tmp_path, eval_cache):  # noqa: F811
    run_dir = make_run(tmp_path / "cddpm", ["model=cddpm", *TINY_DDPM, "eval.n_at_end=0"], eval_cache)
    out = run_export(run_dir, n=10)
    assert yaml.safe_load((out / "network.yaml").read_text())["num_classes"] == 10
    options = {"sampler": "ddim", "steps": 2}
    exported = Run.from_export(out, device="cpu").sample(10, seed=1, **options)
    trained = Run.load(run_dir, "last", "cpu").sample(10, seed=1, **options)
    assert torch.equal(exported.images, trained.images) and torch.equal(exported.labels, trained.labels)


def test_export_of_a_run_without_checkpoint_is_refused_and_changes_nothing(dcgan_run, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(dcgan_run / ".hydra", bare / ".hydra")
    shutil.copy(dcgan_run / "metrics.json", bare)
    before = tree([bare])
    result = run_cli(["export", f"run={bare}"], tmp_path)
    assert_refused(result, "last.ckpt", before, [bare])


def test_export_grid_of_a_conditional_run_has_one_row_per_class(tmp_path, eval_cache):  # noqa: F811
    tiny_cgan = ["model=cgan", "model.generator.ngf=8", "model.discriminator.ndf=8", "eval.n_at_end=0"]
    run_dir = make_run(tmp_path / "cgan", tiny_cgan, eval_cache)
    out = run_export(run_dir, n=16)  # rounded up to 20: 10 rows of 2
    card = (out / "README.md").read_text()
    assert "20 samples (one row per class)" in card
    assert Image.open(out / "samples.png").size == (2 * 34 + 2, 10 * 34 + 2)
