"""pix2pix: U-Net and PatchGAN structure, paired data, training, sampling and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST, compose_config, only_run_dir, run_cli
from eval_fixtures import TINY_CLASSIFIER, eval_cache  # noqa: F401
from fixture_data import write_pairs
from PIL import Image

from genlab.build import instantiate_datamodule, instantiate_model, instantiate_trainer
from genlab.data.pair_datasets import PairedFiles, sobel_edges
from genlab.data.paired import PairedDataModule, PairedFolderDataModule
from genlab.errors import GenlabError
from genlab.metrics.translation import translate_pairs
from genlab.models.adversarial import LinearDecay
from genlab.models.losses import BCELoss, LSGANLoss
from genlab.models.pix2pix import Pix2PixModule
from genlab.nets.patchgan import PatchGANDiscriminator, output_size, receptive_field
from genlab.nets.unet import UNetGenerator, auto_depth
from genlab.tasks.eval import evaluate
from genlab.tasks.train import train

TINY = ["model.generator.ngf=8", "model.discriminator.ndf=8", "data.batch_size=8"]


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture
def paired_root(tmp_path: Path) -> Path:
    root = tmp_path / "pairs"
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        write_pairs(root / split, n)
    return root


# ----------------------------------------------------------------------------- networks
def test_unet_256_has_the_official_parameter_count_and_dropout_blocks():
    net = UNetGenerator(3, 3, image_size=256, ngf=64, norm="batch")
    assert net.depth == 8
    assert n_params(net) == 54_413_955
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 3


@pytest.mark.parametrize(("size", "depth"), [(256, 8), (128, 7), (64, 6), (32, 5), (96, 5)])
def test_unet_depth_follows_the_image_size(size, depth):
    assert auto_depth(size) == depth


def test_unet_shapes_and_encoder_feature_maps():
    net = UNetGenerator(1, 3, image_size=64, ngf=8).eval()
    x = torch.randn(2, 1, 64, 64)
    shapes = []
    h = x
    for block in net.encoder:
        h = block(h)
        shapes.append(tuple(h.shape[1:]))
    assert shapes == [(8, 32, 32), (16, 16, 16), (32, 8, 8), (64, 4, 4), (64, 2, 2), (64, 1, 1)]
    out = net(x)
    assert out.shape == (2, 3, 64, 64)
    assert out.abs().max() <= 1.0


def test_unet_rejects_an_image_size_not_divisible_by_2_to_the_depth():
    with pytest.raises(GenlabError, match="image_size=40"):
        UNetGenerator(3, 3, image_size=40)
    with pytest.raises(GenlabError, match="not divisible by 2\\^depth"):
        UNetGenerator(3, 3, image_size=96, depth=6)


def test_patchgan_70_has_the_official_parameter_count_and_patch_logits():
    net = PatchGANDiscriminator(in_channels=6, ndf=64, n_layers=3, norm="batch")
    assert n_params(net) == 2_768_705
    assert net.receptive_field == 70
    assert PatchGANDiscriminator(3, condition_channels=3).net[0].in_channels == 6
    small = PatchGANDiscriminator(1, condition_channels=1, ndf=8, n_layers=2)
    assert small(torch.randn(2, 2, 32, 32)).shape == (2, 1, output_size(32, 2), output_size(32, 2))
    assert output_size(256, 3) == 30


def test_receptive_field_table():
    table = {n: receptive_field(n) for n in range(1, 7)}
    assert table == {1: 16, 2: 34, 3: 70, 4: 142, 5: 286, 6: 574}
    with pytest.raises(GenlabError, match="n_layers=0"):
        receptive_field(0)


# ----------------------------------------------------------------------------- losses and LR
def test_lsgan_loss_follows_its_formula():
    outputs = {"real": torch.tensor([[1.5, 0.2]]), "fake": torch.tensor([[-0.5, 0.8]])}
    seen = []

    def d(images, condition):
        seen.append(condition)
        return outputs[images]

    loss, out_real, out_fake = LSGANLoss().discriminator_loss(d, "real", "fake", "A")
    expected = ((outputs["real"] - 1) ** 2).mean() + (outputs["fake"] ** 2).mean()
    assert torch.allclose(loss, expected) and out_real is outputs["real"] and out_fake is outputs["fake"]
    loss_g, _ = LSGANLoss().generator_loss(d, "fake", "A")
    assert torch.allclose(loss_g, ((outputs["fake"] - 1) ** 2).mean())
    assert seen == ["A"] * 3  # D is conditioned on what the loss is handed
    assert torch.allclose(LSGANLoss().score(outputs["fake"]), torch.tensor(0.15))  # raw scores, not probabilities


def _tiny_pix2pix(gan_mode: str) -> Pix2PixModule:
    generator = UNetGenerator(1, 1, image_size=32, ngf=4)
    discriminator = PatchGANDiscriminator(1, condition_channels=1, ndf=4, n_layers=2)
    return Pix2PixModule(generator, discriminator, torch.optim.Adam, torch.optim.Adam, gan_mode=gan_mode)


def test_pix2pix_takes_its_cgan_loss_from_the_loss_objects_and_keeps_its_checkpoint_keys():
    vanilla, lsgan = _tiny_pix2pix("vanilla"), _tiny_pix2pix("lsgan")
    assert type(vanilla.loss) is BCELoss and type(lsgan.loss) is LSGANLoss
    # the loss objects hold no weights: checkpoints keep exactly the generator's and discriminator's keys
    assert set(lsgan.state_dict()) == set(vanilla.state_dict())
    assert {key.split(".")[0] for key in vanilla.state_dict()} == {"generator", "discriminator"}
    a, b = torch.randn(2, 1, 32, 32), torch.randn(2, 1, 32, 32)
    assert torch.equal(vanilla.conditional_d(b, a), vanilla.discriminator(torch.cat([a, b], 1)))
    with pytest.raises(GenlabError, match=r"model\.gan_mode=wgan is not one of vanilla, lsgan"):
        _tiny_pix2pix("wgan")


def test_linear_decay():
    rule = LinearDecay(n_epochs=2, n_epochs_decay=2)
    assert [rule(e) for e in range(4)] == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3])


# ----------------------------------------------------------------------------- paired data
def test_joint_crop_gives_a_and_b_the_same_crop_and_flip(tmp_path):
    write_pairs(tmp_path, 1, suffix=".png")
    files = sorted(tmp_path.iterdir())
    dataset = PairedFiles(files, image_size=32, load_size=40, input_channels=3, channels=3, train=True, hflip_p=0.5)
    torch.manual_seed(0)
    crops = []
    for _ in range(12):
        a, b = dataset[0]
        assert a.shape == b.shape == (3, 32, 32)
        # B is the negative of A: the same crop and flip keep a + b == 0 (up to resize rounding).
        assert (a + b).abs().max() < 0.02
        crops.append(a)
    assert any(not torch.equal(crops[0], c) for c in crops[1:]), "the crop should vary between draws"
    reverse = PairedFiles(files, 32, 40, 3, 3, direction="BtoA")
    forward_a, forward_b = dataset.eval_pairs([0])
    reverse_a, reverse_b = reverse.eval_pairs([0])
    assert torch.equal(reverse_a, forward_b) and torch.equal(reverse_b, forward_a)


def test_paired_folder_datamodule_delivers_a_b_batches(paired_root):
    dm = PairedFolderDataModule(
        name="paired_folder", root=str(paired_root), channels=3, input_channels=1, image_size=32, load_size=36,
        num_classes=0, batch_size=2,
    )  # fmt: skip
    a, b = next(iter(dm.train_dataloader()))
    assert a.shape == (2, 1, 32, 32) and b.shape == (2, 3, 32, 32)
    assert a.min() >= -1 and b.max() <= 1
    fixed_a, fixed_b = dm.fixed_pairs("val", 5)
    assert fixed_a.shape == (2, 1, 32, 32) and fixed_b.shape == (2, 3, 32, 32)


def test_sobel_edges_outline_a_square():
    image = torch.zeros(1, 1, 16, 16)
    image[..., 4:12, 4:12] = 1.0
    edges = sobel_edges(image, threshold=0.3)
    assert set(edges.unique().tolist()) == {0.0, 1.0}
    assert edges[0, 0, 8, 8] == 0 and edges[0, 0, 0, 0] == 0
    assert edges[0, 0, 8, 4] == 1 and edges[0, 0, 3, 8] == 1


def test_edges_option_wraps_an_in_memory_dataset(cfg_factory):
    cfg = cfg_factory("train", ["model=pix2pix", "data=edges", "data@data.source=digits", "data.source.image_size=32"])
    dm = instantiate_datamodule(cfg)
    assert dm.name == "edges_digits" and isinstance(dm, PairedDataModule)
    a, b = next(iter(dm.val_dataloader()))
    assert a.shape == (16, 1, 32, 32) and b.shape == (16, 1, 32, 32)
    assert set(a.unique().tolist()) <= {-1.0, 1.0}
    # Edges lie where the digit's intensity changes.
    assert 0.02 < (a > 0).float().mean() < 0.5


# ----------------------------------------------------------------------------- training
def test_pix2pix_lowers_the_l1_of_its_translations(cfg_factory):
    cfg = cfg_factory(
        "train",
        ["model=pix2pix", "data=edges2digits", *TINY, *FAST, "trainer.limit_train_batches=15", "logger=none"],
    )
    dm = instantiate_datamodule(cfg)
    model = instantiate_model(cfg)
    dm.setup()
    before = translate_pairs(model.eval().translate, dm.val_dataloader(), model.device).pixel
    trainer = instantiate_trainer(cfg, [], [])
    trainer.fit(model, datamodule=dm)
    after = translate_pairs(model.eval().translate, dm.val_dataloader(), model.device).pixel
    assert set(before) == {"l1", "psnr", "ssim"}
    assert after["l1"] < before["l1"] and after["psnr"] > before["psnr"]


def test_pix2pix_trains_on_a_paired_folder(cfg_factory, paired_root):
    overrides = [f"data.root={paired_root}", "data.image_size=32", "data.load_size=36", "data.num_workers=0"]
    overrides.append("model.gan_mode=lsgan")
    cfg = cfg_factory("train", ["model=pix2pix", "data=paired_folder", *overrides, *TINY, *FAST, "logger=none"])
    metrics = train(cfg)
    assert metrics["status"] == "completed" and 0 <= metrics["test/l1"] <= 1
    assert np.isfinite(metrics["train/loss_d"]) and np.isfinite(metrics["train/d_real"])
    assert (Path(cfg.paths.run_dir) / "samples" / "epoch_0001.png").is_file()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("pix2pix_cli")
    result = run_cli(["train", "model=pix2pix", "data=edges2digits", *TINY, *FAST], cwd)
    assert result.returncode == 0, result.stderr
    return only_run_dir(cwd)


@pytest.mark.slow
def test_train_writes_triples_and_translation_metrics(trained_run):
    assert trained_run.name.endswith("_pix2pix_edges2digits")
    grid = Image.open(trained_run / "samples" / "epoch_0001.png")
    assert grid.width > grid.height  # 8 triples: 2 triples (6 images) a row, 4 rows
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    for key in ("val/l1", "val/psnr", "val/ssim", "test/l1", "test/psnr", "test/ssim"):
        assert key in metrics
    assert 0 <= metrics["test/l1"] <= 1 and -1 <= metrics["test/ssim"] <= 1
    assert (trained_run / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_sample_translates_test_triples_and_user_images(trained_run, tmp_path):
    result = run_cli(["sample", f"run={trained_run}", "n=6", "format=npz"], tmp_path)
    assert result.returncode == 0, result.stderr
    (out,) = (trained_run / "sample").iterdir()
    arrays = np.load(out / "samples.npz")
    assert arrays["inputs"].shape == arrays["images"].shape == arrays["targets"].shape == (6, 1, 32, 32)
    assert (out / "grid.png").is_file()

    inputs = tmp_path / "mine"
    inputs.mkdir()
    Image.fromarray(np.zeros((50, 70, 3), np.uint8)).save(inputs / "sketch.png")
    Image.fromarray(np.full((20, 20), 255, np.uint8)).save(inputs / "other.jpg")
    (inputs / "notes.txt").write_text("not an image")
    result = run_cli(["sample", f"run={trained_run}", f"input={inputs}"], tmp_path)
    assert result.returncode == 0, result.stderr
    out = max((trained_run / "sample").iterdir())
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".png") == ["grid.png", "other.png", "sketch.png"]
    assert Image.open(out / "sketch.png").size == (32, 32)


@pytest.mark.slow
def test_eval_reports_l1_psnr_ssim_and_fid_in_the_targets_feature_space(trained_run, eval_cache, tmp_path, capsys):  # noqa: F811
    cfg = compose_config("eval", [f"run={trained_run}", *TINY_CLASSIFIER], tmp_path / "eval")
    cfg.paths.cache_dir = str(eval_cache)
    evaluate(cfg)  # in-process: the genlab eval command without the start-up of a subprocess
    table = capsys.readouterr().out
    for key in ("l1", "psnr", "ssim", "fid", "feature_network"):
        assert f"  {key} " in table, table
    (out,) = (trained_run / "eval").iterdir()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 359 and metrics["split"] == "test"
    assert metrics["features"] == "classifier" and metrics["feature_data"] == "digits"
    assert metrics["feature_network"].startswith("classifier:") and np.isfinite(metrics["fid"]) and metrics["fid"] > 0
    assert 0 <= metrics["l1"] <= 1 and -1 <= metrics["ssim"] <= 1


# ----------------------------------------------------------------------------- bad input
@pytest.mark.slow
def test_sample_input_missing_or_without_images(trained_run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, needle in ((tmp_path / "nope", "does not exist"), (empty, "holds no images")):
        result = run_cli(["sample", f"run={trained_run}", f"input={path}"], tmp_path)
        assert result.returncode != 0
        assert "Traceback" not in result.stderr, result.stderr
        assert f"input={path}" in result.stderr and needle in result.stderr, result.stderr


def _bad_pairs(root: Path) -> list[str]:
    write_pairs(root / "train", 2)
    write_pairs(root / "val", 1)
    write_pairs(root / "test", 1)
    Image.fromarray(np.zeros((32, 50, 3), np.uint8)).save(root / "train" / "wide.jpg")
    return [f"data.root={root}"]


def _no_test_split(root: Path) -> list[str]:
    write_pairs(root / "train", 2)
    write_pairs(root / "val", 1)
    return [f"data.root={root}"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["data=edges2digits", "data.image_size=40"], "image_size=40"),
        (["data=edges2digits", "model.discriminator.n_layers=0"], "n_layers=0"),
        (["data=digits"], "paired_folder"),
        (["data=paired_folder", _bad_pairs], "width must be twice the height"),
        (["data=paired_folder", _no_test_split], "no 'test' folder"),
    ],
)
def test_bad_training_input_fails_with_one_clear_message(tmp_path, args, needle):
    overrides = []
    for arg in args:
        overrides += arg(tmp_path / "pairs") if callable(arg) else [arg]
    if "data=paired_folder" in overrides:
        overrides += ["data.image_size=32", "data.load_size=36", "data.num_workers=0"]
    result = run_cli(["train", "model=pix2pix", *overrides, *TINY, *FAST], tmp_path, timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert needle in result.stderr, result.stderr
