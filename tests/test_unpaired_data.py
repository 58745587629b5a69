"""Unpaired datamodules (CycleGAN): the folder layout, unpaired edges2digits, batching rules, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from fixture_data import write_unpaired
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from PIL import Image

from genlab.build import instantiate_datamodule
from genlab.data.pair_datasets import sobel_edges
from genlab.data.unpaired import UnpairedBatchSampler, UnpairedDataModule, eval_batches
from genlab.errors import DatasetNotFoundError, GenlabError

FOLDER = ["data=unpaired_folder", "data.num_workers=0", "data.image_size=32", "data.load_size=36"]


def tags(images: torch.Tensor) -> list[int]:
    """The value each constant fixture image was written with (see ``write_unpaired``)."""
    return images.add(1).div(2).mul(255).mean(dim=(1, 2, 3)).round().long().tolist()


def folder_data(cfg_factory, root: Path, *extra: str) -> UnpairedDataModule:
    """The datamodule as training builds it; construction errors unwrapped from Hydra's exception."""
    cfg = cfg_factory("train", [*FOLDER, f"data.root={root}", *extra])
    try:
        return instantiate_datamodule(cfg)
    except InstantiationException as err:
        raise err.__cause__ from None


# ----------------------------------------------------------------------------- unpaired_folder
def test_folder_train_batches_shuffle_each_domain_on_its_own(cfg_factory, tmp_path):
    data = folder_data(cfg_factory, write_unpaired(tmp_path / "h2z"), "data.batch_size=2")
    assert isinstance(data, UnpairedDataModule)
    assert (data.input_channels, data.channels, data.has_true_pairs("train")) == (3, 3, False)
    loader = data.train_dataloader()
    assert len(loader) == 5 // 2  # the larger domain (5 A images) in full batches
    a_stream, b_stream, rows = [], [], []
    for _ in range(6):
        for a, b in loader:
            assert a.shape == b.shape == (2, 3, 32, 32)
            assert a.min() >= -1 and a.max() <= 1
            a_stream += tags(a)
            b_stream += tags(b)
    rows = list(zip(a_stream, b_stream, strict=True))
    # Every image of a domain is used once before any repeats: permutations back to back.
    assert [sorted(a_stream[i : i + 5]) for i in range(0, 20, 5)] == [[0, 10, 20, 30, 40]] * 4
    assert [sorted(b_stream[i : i + 3]) for i in range(0, 24, 3)] == [[100, 110, 120]] * 8
    # Independent orders: each A image meets more than one B image.
    assert all(len({b for a, b in rows if a == tag}) > 1 for tag in (0, 10, 20, 30, 40))
    assert a_stream[:5] != sorted(a_stream[:5]) or a_stream[5:10] != sorted(a_stream[5:10])


def test_folder_val_is_the_test_folders_in_order(cfg_factory, tmp_path):
    data = folder_data(cfg_factory, write_unpaired(tmp_path / "h2z"), "data.batch_size=2")
    batches = list(data.val_dataloader())
    a = torch.cat([batch[0] for batch in batches])
    b = torch.cat([batch[1] for batch in batches])
    # testA has 2 images, testB 3: rows (A[i mod 2], B[i mod 3]) for i < 3.
    assert (tags(a), tags(b)) == ([0, 10, 0], [100, 110, 120])
    assert len(data.dataset("test")) == 3 and not data.has_true_pairs("test")
    assert tags(data.fixed_domain_images("train", 10, "B")) == [100, 110, 120]
    fixed_a, fixed_b = data.fixed_pairs("val", 2)
    assert (tags(fixed_a), tags(fixed_b)) == ([0, 10], [100, 110])
    assert data.domain_labels("train", "A").tolist() == [-1] * 5
    with pytest.raises(GenlabError, match="domain=C"):
        data.fixed_domain_images("train", 1, "C")


def test_folder_training_crops_from_load_size_and_grayscale_domains(cfg_factory, tmp_path):
    root = write_unpaired(tmp_path / "h2z")
    ramp = torch.arange(36).mul(7).to(torch.uint8).view(1, 36).expand(36, 36)
    Image.fromarray(ramp.numpy()).convert("RGB").save(root / "trainB" / "ramp.png")
    data = folder_data(cfg_factory, root, "data.input_channels=1", "data.hflip_p=0")
    a = data.fixed_domain_images("train", 1, "A")
    assert a.shape == (1, 1, 32, 32)
    ramp_domain = data.domain("train", "B")
    index = [p.name for p in ramp_domain.paths].index("ramp.png")
    clean = data.fixed_domain_images("train", index + 1, "B")[index]
    torch.manual_seed(0)
    crops = {tuple(ramp_domain[index][0][0, 0, :3].tolist()) for _ in range(20)}
    # Resized to 36 and cropped at random offsets: several different left edges, none of them the
    # plain 32-pixel resize of the evaluation path (whose ramp is steeper).
    assert len(crops) > 2
    assert tuple(clean[0, 0, :3].tolist()) not in crops


def test_epoch_size_sets_the_rows_per_epoch(cfg_factory, tmp_path):
    data = folder_data(cfg_factory, write_unpaired(tmp_path / "h2z"), "data.batch_size=2", "data.epoch_size=8")
    assert len(data.train_dataloader()) == 4


@pytest.mark.parametrize(
    ("break_it", "error", "needle"),
    [
        (lambda root: __import__("shutil").rmtree(root / "trainB"), DatasetNotFoundError, "root/trainB is missing"),
        (lambda root: [p.unlink() for p in (root / "testA").iterdir()], DatasetNotFoundError, "root/testA holds no"),
        (lambda root: (root / "trainA" / "bad.png").write_text("not an image"), GenlabError, "bad.png"),
    ],
)
def test_folder_errors_name_the_problem(cfg_factory, tmp_path, break_it, error, needle):
    root = write_unpaired(tmp_path / "h2z")
    break_it(root)
    with pytest.raises(error, match=needle):
        folder_data(cfg_factory, root).setup()


def test_a_truncated_image_fails_clearly_when_read(cfg_factory, tmp_path):
    root = write_unpaired(tmp_path / "h2z")
    path = root / "trainA" / "000.png"
    path.write_bytes(path.read_bytes()[:60])
    data = folder_data(cfg_factory, root)
    with pytest.raises(GenlabError, match=r"image file .*000\.png cannot be read"):
        data.fixed_domain_images("train", 1, "A")


def test_folder_bad_options(cfg_factory, tmp_path):
    root = write_unpaired(tmp_path / "h2z")
    with pytest.raises(DatasetNotFoundError, match="is not a folder"):
        folder_data(cfg_factory, tmp_path / "nowhere").setup()
    with pytest.raises(GenlabError, match="load_size=30 is smaller"):
        folder_data(cfg_factory, root, "data.load_size=30")
    with pytest.raises(GenlabError, match="augment=basic does not apply to unpaired data"):
        folder_data(cfg_factory, root, "augment=basic")
    with pytest.raises(GenlabError, match=r"data\.on_device=True does not apply"):
        folder_data(cfg_factory, root, "data.on_device=true")


# ----------------------------------------------------------------------------- samplers
def test_eval_batches_cover_every_row_once_across_ranks():
    shares = [eval_batches(5, 3, 2, rank, 2) for rank in range(2)]
    rows = sorted(pair for share in shares for a, b in share for pair in zip(a, b, strict=True))
    assert rows == sorted([(i % 5, i % 3) for i in range(5)])


def test_unpaired_batch_sampler_is_seeded():
    def draw(seed: int) -> list:
        return list(UnpairedBatchSampler(7, 4, 3, 5, seed))

    assert draw(0) == draw(0) and draw(0) != draw(1)
    assert all(len(a) == len(b) == 3 for a, b in draw(0))


# ----------------------------------------------------------------------------- unpaired_edges2digits
@pytest.fixture(scope="module")
def edges_modules(tmp_path_factory):
    from conftest import compose_config

    run = tmp_path_factory.mktemp("edges") / "run"
    unpaired = instantiate(
        compose_config("train", ["data=unpaired_edges2digits"], run).data, augmentation=None, _recursive_=False
    )
    paired = instantiate(compose_config("train", ["data=edges2digits"], run).data, augmentation=None, _recursive_=False)
    return unpaired, paired


def test_unpaired_edges_train_halves_are_disjoint_and_hold_no_pair(edges_modules):
    data, _ = edges_modules
    source = data.source.load_splits()["train"]
    edges, images = data.domain("train", "A"), data.domain("train", "B")
    assert len(edges) + len(images) == len(source.labels) == 1258
    assert abs(len(edges) - len(images)) <= 1
    flat = source.images.flatten(1)
    # Locate every B image in the source's training split, and every A edge map among their edge maps.
    b_index = [int((flat == img.flatten()).all(1).nonzero()) for img in images.images]
    source_edges = sobel_edges(source.images.float().div(255), data.threshold).mul(255).to(torch.uint8).flatten(1)
    a_matches = [set((source_edges == e.flatten()).all(1).nonzero().flatten().tolist()) for e in edges.images]
    assert all(matches for matches in a_matches)
    # No edge map's own digit is in domain B, and the halves use every training image once.
    assert not set(b_index) & set().union(*a_matches)
    assert len(set(b_index)) == len(images)
    assert data.domain_labels("train", "B").tolist() == source.labels[b_index].tolist()
    assert not data.has_true_pairs("train")


def test_unpaired_edges_val_and_test_are_edges2digits_true_pairs(edges_modules):
    data, paired = edges_modules
    for split in ("val", "test"):
        pairs = paired.dataset(split)
        assert data.has_true_pairs(split)
        assert torch.equal(data.domain(split, "A").images, pairs.inputs)
        assert torch.equal(data.domain(split, "B").images, pairs.images)
    assert len(data.dataset("test")) == 359
    a, b = next(iter(data.test_dataloader()))
    expected_a, expected_b = paired.fixed_pairs("test", 16)
    assert torch.equal(a, expected_a) and torch.equal(b, expected_b)
    assert (data.input_channels, data.channels, data.image_size) == (1, 1, 32)
    assert data.domain_labels("test", "B").tolist() == data.source.load_splits()["test"].labels.tolist()


def test_unpaired_edges_train_loader(edges_modules):
    data, _ = edges_modules
    loader = data.train_dataloader()
    assert len(loader) == 629 // 16
    a, b = next(iter(loader))
    assert a.shape == b.shape == (16, 1, 32, 32)
    assert set(a.unique().tolist()) <= {-1.0, 1.0}  # binary edge maps
    assert len(b.unique()) > 2


class L1Translator(pl.LightningModule):
    """A 1×1 convolution A → B: enough to run the datamodule's loaders through a Trainer."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Conv2d(1, 1, 1)
        self.shapes: list[tuple] = []

    def training_step(self, batch, batch_idx):
        a, b = batch
        self.shapes.append((tuple(a.shape), tuple(b.shape)))
        return (self.net(a) - b).abs().mean()

    def validation_step(self, batch, batch_idx):
        a, b = batch
        self.log("val/l1", (self.net(a) - b).abs().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_trainer_runs_the_unpaired_loaders(edges_modules):
    data, _ = edges_modules
    model = L1Translator()
    trainer = pl.Trainer(
        fast_dev_run=2, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(model, datamodule=data)
    assert model.shapes == [((16, 1, 32, 32), (16, 1, 32, 32))] * 2
    assert torch.isfinite(trainer.callback_metrics["val/l1"])
