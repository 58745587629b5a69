"""Parts of the held-out-class study without training: class selection, DAGAN's positive pairs, the
inversion net's class table."""

from __future__ import annotations

import pytest
import torch

from genlab.data.classes import class_ids, config_class_ids
from genlab.data.digits import DigitsDataModule
from genlab.data.pairs import same_class_partners
from genlab.errors import GenlabError
from genlab.nets.class_inversion import InversionUNet
from genlab.nets.dagan import DAGANGenerator

HELD = [5, 6, 7, 8, 9]


def digits(**kwargs) -> DigitsDataModule:
    module = DigitsDataModule(name="digits", channels=1, image_size=8, **kwargs)
    module.setup()
    return module


def test_heldout_selection_keeps_those_classes_relabelled_in_order():
    full = digits(num_classes=10)
    held = digits(num_classes=5, heldout_classes=HELD, classes="heldout")
    seen = digits(num_classes=5, heldout_classes=HELD, classes="seen")
    assert held.class_ids == HELD and seen.class_ids == [0, 1, 2, 3, 4]
    for split in ("train", "val", "test"):
        images, labels = full.dataset(split).images, full.dataset(split).labels
        mine = labels >= 5
        assert torch.equal(held.dataset(split).images, images[mine])
        assert torch.equal(held.dataset(split).labels, labels[mine] - 5)
        assert torch.equal(seen.dataset(split).images, images[~mine])
    assert len(held.dataset("test")) == 174  # the study's test split: one image ≈ 0.57 %


def test_a_reordered_list_relabels_by_position():
    picked = digits(num_classes=2, classes=[7, 3])
    full = digits(num_classes=10)
    labels = full.dataset("train").labels
    expected = labels[(labels == 7) | (labels == 3)]
    assert torch.equal(picked.dataset("train").labels, (expected == 3).long())


def test_few_shot_subset_follows_subset_seed_and_keeps_the_split():
    one = digits(num_classes=5, heldout_classes=HELD, classes="heldout", train_per_class=3, subset_seed=1)
    two = digits(num_classes=5, heldout_classes=HELD, classes="heldout", train_per_class=3, subset_seed=2)
    assert torch.equal(one.dataset("train").labels.bincount(), torch.full((5,), 3))
    assert not torch.equal(one.dataset("train").images, two.dataset("train").images)
    assert torch.equal(one.dataset("test").images, two.dataset("test").images)
    again = digits(num_classes=5, heldout_classes=HELD, classes="heldout", train_per_class=3, subset_seed=1)
    assert torch.equal(one.dataset("train").images, again.dataset("train").images)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"heldout_classes": [5, 12], "classes": "seen", "num_classes": 9}, "names class 12"),
        ({"heldout_classes": list(range(10)), "classes": "seen", "num_classes": 10}, "holds out every class"),
        ({"heldout_classes": HELD, "classes": "seen", "num_classes": 10}, "set data.num_classes=5"),
        ({"classes": "heldout", "num_classes": 5}, "data.heldout_classes, which is not set"),
        ({"heldout_classes": HELD, "classes": "heldout", "num_classes": 5, "train_per_class": 500}, "class 5"),
    ],
)
def test_bad_class_selections_are_refused(kwargs, message):
    with pytest.raises(GenlabError, match=message):
        digits(**kwargs)


def test_config_class_ids_say_what_each_run_saw():
    assert config_class_ids({"classes": "seen", "heldout_classes": HELD, "num_classes": 5}) == [0, 1, 2, 3, 4]
    assert config_class_ids({"classes": "heldout", "heldout_classes": HELD, "num_classes": 5}) == HELD
    assert config_class_ids({"classes": None, "heldout_classes": None, "num_classes": 10}) == list(range(10))
    assert config_class_ids({"classes": [9, 2], "num_classes": 2}) == [9, 2]
    assert class_ids("seen", [1, 3], 5) == [0, 2, 4]


def test_positive_pairs_share_a_class_and_are_two_images():
    labels = torch.tensor([0, 1, 0, 2, 1, 1, 3, 0])
    anchors, partners = same_class_partners(labels, torch.Generator().manual_seed(0))
    # class 2 and class 3 have one image each: they cannot be anchors
    assert anchors.tolist() == [0, 1, 2, 4, 5, 7]
    assert torch.equal(labels[anchors], labels[partners])
    assert bool((anchors != partners).all())
    # partners are drawn among all other members of the class
    seen = set()
    generator = torch.Generator().manual_seed(1)
    for _ in range(50):
        a, p = same_class_partners(labels, generator)
        seen.add(int(p[a == 1]))
    assert seen == {4, 5}


def test_dagan_generator_keeps_the_shape_and_uses_the_noise():
    torch.manual_seed(0)
    net = DAGANGenerator(channels=1, image_size=16, ngf=8, nz=4, noise_channels=2).eval()
    assert net.depth == 3
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        out = net(x, torch.randn(3, 4))
        assert out.shape == x.shape and float(out.abs().max()) <= 1
        assert not torch.allclose(out, net(x, torch.randn(3, 4)))
    with pytest.raises(GenlabError, match="divisible by 2"):
        DAGANGenerator(image_size=12, depth=3)


def test_inversion_net_maps_known_null_and_new_labels():
    torch.manual_seed(0)
    net = InversionUNet(
        1, 8, base_channels=8, channel_mults=[1], attention_resolutions=[], num_classes=3, new_classes=2, vectors=2
    )
    net.timesteps = 10
    assert net.num_classes == 5 and net.base_classes == 3
    with torch.no_grad():
        net.new_emb.copy_(torch.randn_like(net.new_emb))
    labels = torch.tensor([0, 2, 5, 3, 4, 4])
    t = torch.tensor([0, 9, 3, 2, 4, 5])
    out = net.class_vectors(labels, t)
    table = net.class_emb.weight
    assert torch.equal(out[0], table[0]) and torch.equal(out[1], table[2])
    assert torch.equal(out[2], table[3]), "label K+M is the frozen null class (row K)"
    assert torch.equal(out[3], net.new_emb[0, 0])
    assert torch.equal(out[4], net.new_emb[1, 0]) and torch.equal(out[5], net.new_emb[1, 1]), "t < 5 | t ≥ 5"
    net.init_new_embeddings()
    assert torch.allclose(net.new_emb[1, 1], table[:3].mean(0))


@pytest.mark.parametrize("weight", [-1, True, "strong"])
def test_dagan_refuses_a_bad_anchor_weight(cfg_factory, weight):
    from fewshot_fixtures import TINY_DAGAN
    from hydra.errors import InstantiationException

    from genlab.build import instantiate_model

    with pytest.raises(InstantiationException) as caught:
        instantiate_model(cfg_factory("train", [*TINY_DAGAN, f"model.lambda_anchor={weight}"]))
    assert isinstance(caught.value.__cause__, GenlabError) and "must be a number ≥ 0" in str(caught.value.__cause__)


def test_dagan_anchor_term_keeps_variations_near_their_input(cfg_factory):
    """model.lambda_anchor: the same training with the L1-to-anchor term ends with G(x, z) much nearer x."""
    from conftest import FAST
    from fewshot_fixtures import TINY_DAGAN
    from pytorch_lightning import Trainer

    from genlab.build import instantiate_datamodule, instantiate_model

    def distance_after_training(weight: float) -> float:
        torch.manual_seed(0)
        options = [f"model.lambda_anchor={weight}", "model.lambda_diversity=0", "model.optimizer_g.lr=0.002"]
        cfg = cfg_factory("train", [*TINY_DAGAN, *FAST, *options])
        module, datamodule = instantiate_model(cfg), instantiate_datamodule(cfg)
        trainer = Trainer(
            max_steps=60, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
            limit_val_batches=0, enable_model_summary=False, callbacks=[], default_root_dir=cfg.paths.run_dir,
        )  # fmt: skip
        trainer.fit(module, datamodule=datamodule)
        images = next(iter(datamodule.train_dataloader()))[0]
        return float((module.vary(images, torch.Generator().manual_seed(0)) - images).abs().mean())

    assert distance_after_training(100.0) < 0.5 * distance_after_training(0.0)
