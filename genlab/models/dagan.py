"""DAGAN (Antoniou et al. 2017): a data-augmentation GAN that varies a real image within its class.

The generator takes a real image x_i and noise z and returns x_g = G(x_i, z), without being told
x_i's class. The discriminator judges *pairs*: (x_i, x_j), two different real images of one class,
is real; (x_i, x_g) is fake. So G must make an image that belongs with x_i as another member of its
class would — neither a copy of x_i (no real pair is two copies) nor an image of another class.
Trained on the classes a study's classifier never sees, it is applied to the few real images of new
classes (``augment=dagan``).

Nothing in DAGAN's pair loss rewards G for *using* z (one plausible partner per x_i already fools D),
and on digits G learns to ignore it. ``lambda_diversity`` adds the mode-seeking term of MSGAN (Mao et al.
2019): each anchor is varied with two noises z1, z2 and G also minimises
1 / (mean|G(x_i, z1) − G(x_i, z2)| / mean|z1 − z2| + ε); 0 turns it off (the paper's DAGAN).

With few training classes (five digits), G learns to turn any input into one of *those* classes, so its
variations of a new class lose the class. ``lambda_anchor`` (an addition, 0 = the paper) adds
λ · mean|G(x_i, z) − x_i| to G's loss, as pix2pix adds L1 to its target. Measured on digits
(docs/fewshot.md): with λ = 100 and no mode seeking it keeps 88 % of unseen digits' classes, but its
variations of one image are then one image; with any mode seeking, the class is lost again.
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning import Callback
from torch import Tensor, nn

from genlab.callbacks.variation_grid import VariationGrid
from genlab.data.pairs import same_class_partners
from genlab.errors import GenlabError
from genlab.models.adversarial import AdversarialModule, eval_mode, frozen
from genlab.models.base import OptimizerFactory, check_image_data, make_optimizer
from genlab.models.losses import GANLoss


class DAGANModule(AdversarialModule):
    """DAGAN with manual optimization: per batch one D update and one G update (``max_steps`` counts G updates).

    Batches are labelled images; each image with another member of its class in the batch becomes an
    anchor x_i paired with a random different image x_j of that class
    (:func:`~genlab.data.pairs.same_class_partners`). Logs ``train/loss_d``, ``train/loss_g``,
    ``train/d_real``, ``train/d_fake`` and ``train/pairs`` (anchors per batch).

    Args:
        generator: ``generator(x, z)`` (:class:`~genlab.nets.dagan.DAGANGenerator`); has ``nz``.
        discriminator: pair discriminator on ``concat(x_i, x_other)`` (2·C channels) returning logits.
        loss: a :class:`~genlab.models.losses.GANLoss`, called with the anchor as the condition.
        optimizer_g, optimizer_d: partial optimizers.
        channels, image_size: the images' shape.
        grid_size, grid_variations: the epoch grid (inputs × variations; 0 inputs: none).
        n_critic: discriminator updates per generator update (must be 1; the loss configs set it).
        lambda_diversity: weight of the mode-seeking term (0: the paper's objective alone).
        lambda_anchor: weight of the L1 distance of x_g to its anchor x_i (0: the paper's objective alone).
        **meta: the model config's ``name``, ``epochs``, ``monitor``.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        channels: int,
        image_size: int,
        grid_size: int = 8,
        grid_variations: int = 7,
        n_critic: int = 1,
        lambda_diversity: float = 0.0,
        lambda_anchor: float = 0.0,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        if n_critic != 1:
            raise GenlabError(
                f"model.n_critic={n_critic}: DAGAN makes one discriminator update per generator update; "
                "set model.n_critic=1."
            )
        self.generator = generator
        self.discriminator = discriminator
        self.loss = loss
        self.optimizer_g_factory = optimizer_g
        self.optimizer_d_factory = optimizer_d
        self.image_shape = (channels, image_size, image_size)
        self.num_classes = 0  # it never sees labels when generating
        self.grid_size, self.grid_variations = grid_size, grid_variations
        for key, value in (("lambda_diversity", lambda_diversity), ("lambda_anchor", lambda_anchor)):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise GenlabError(f"model.{key}={value} must be a number ≥ 0 (0: off).")
        self.lambda_diversity, self.lambda_anchor = float(lambda_diversity), float(lambda_anchor)

    # ---- generation (capability Varies) -------------------------------------------------------------

    @torch.no_grad()
    def vary(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One new image per input (in [-1, 1]) from fresh noise z ~ N(0, I), BatchNorm in eval mode."""
        images = images.to(self.device)
        z = torch.randn(len(images), self.generator.nz, device=self.device, generator=generator)
        with eval_mode(self.generator) as net:
            return net(images, z)

    # ---- training -----------------------------------------------------------------------------------

    def check_data(self, datamodule: Any) -> None:
        if datamodule.num_classes < 1:
            raise GenlabError(
                f"model=dagan trains on pairs of images of one class, but data={datamodule.name} has no labels: "
                "use a labelled dataset (digits, mnist, fashion_mnist, cifar10, class folders)."
            )
        check_image_data(self.config_name, self.image_shape, 0, datamodule)
        counts = torch.bincount(datamodule.dataset("train").labels.clamp(min=0), minlength=datamodule.num_classes)
        if int(counts.min()) < 2:
            raise GenlabError(
                f"model=dagan needs at least 2 training images of every class (positive pairs); class "
                f"{int(counts.argmin())} of data={datamodule.name} has {int(counts.min())}: raise data.train_per_class."
            )

    def configure_callbacks(self) -> list[Callback]:
        return [VariationGrid(self.grid_size, self.grid_variations)] if self.grid_size > 0 else []

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [
            make_optimizer(self.optimizer_g_factory, self.generator.parameters(), "optimizer_g"),
            make_optimizer(self.optimizer_d_factory, self.discriminator.parameters(), "optimizer_d"),
        ]

    def pair_logits(self, other: Tensor, anchor: Tensor) -> Tensor:
        """D(x_i, x): logits of ``other`` judged as a second member of ``anchor``'s class."""
        return self.discriminator(torch.cat([anchor, other], 1))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        anchors, partners = same_class_partners(labels)
        if len(anchors) < 2:
            raise GenlabError(
                "model=dagan: a training batch holds fewer than 2 images that share a class with another image "
                "of the batch; raise data.batch_size (positive pairs come from within a batch)."
            )
        x_i, x_j = images[anchors.to(images.device)], images[partners.to(images.device)]
        optimizer_g, optimizer_d = self.optimizers()
        copies = 2 if self.lambda_diversity > 0 else 1
        z = torch.randn(copies * len(x_i), self.generator.nz, device=self.device)
        generated = self.generator(x_i.repeat(copies, 1, 1, 1), z)
        first = generated[: len(x_i)]
        loss_d, out_real, out_fake = self.loss.discriminator_loss(self.pair_logits, x_j, first.detach(), x_i)
        self.discriminator_update(optimizer_d, loss_d)
        with frozen(self.discriminator):
            loss_g, _ = self.loss.generator_loss(self.pair_logits, first, x_i)
        metrics = {"train/loss_d": loss_d, "train/loss_g": loss_g, "train/d_real": self.loss.score(out_real)}
        if copies == 2:
            z1, z2 = z.chunk(2)
            spread = (first - generated[len(x_i) :]).abs().mean() / (z1 - z2).abs().mean()
            loss_g = loss_g + self.lambda_diversity / (spread + 1e-5)
            metrics["train/diversity"] = spread.detach()
        if self.lambda_anchor > 0:
            distance = (first - x_i).abs().mean()
            loss_g = loss_g + self.lambda_anchor * distance
            metrics["train/anchor_l1"] = distance.detach()
        self.generator_update(optimizer_g, loss_g)
        metrics.update({"train/d_fake": self.loss.score(out_fake), "train/pairs": torch.tensor(float(len(anchors)))})
        self.log_step(metrics, prog_bar=("train/loss_d", "train/loss_g"), on_epoch=False)
