"""Class inversion: a frozen class-conditional DDPM that learns embeddings of new classes from a few images.

The offline analogue of textual inversion (Gal et al. 2022) as DA-Fusion (Trabucco et al. 2023) uses
it: for each new class only its embedding (:class:`~genlab.nets.class_inversion.InversionUNet`'s
``new_emb``) is optimised, with the model's own objective L_simple on the class's k real images;
every other weight stays bit-identical. The result samples and edits (SDEdit) like any conditional
DDPM, with the new classes as labels K..K+M−1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from genlab import progress
from genlab.errors import GenlabError
from genlab.models.ddpm import DiffusionModule
from genlab.nets.class_inversion import InversionUNet


class InvertedDiffusionModule(DiffusionModule):
    """A conditional :class:`DiffusionModule` whose net is an :class:`InversionUNet`.

    Args:
        learned_classes: dataset class ids of the new classes, in label order (label K+i is ``learned_classes[i]``).
        base_class_ids: dataset class ids of the frozen model's labels 0..K−1.
        **kwargs: the frozen run's DiffusionModule arguments (``conditional`` true, ``num_classes`` = K).
    """

    def __init__(self, learned_classes: Sequence[int], base_class_ids: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(self.net, InversionUNet):
            raise GenlabError("model.net of an inverted run must be genlab.nets.class_inversion.InversionUNet.")
        if len(base_class_ids) != self.num_classes or len(learned_classes) != self.net.num_classes - self.num_classes:
            raise GenlabError(
                f"model.base_class_ids ({len(base_class_ids)}) and model.learned_classes ({len(learned_classes)}) "
                f"do not match the net ({self.num_classes} frozen + {self.net.num_classes - self.num_classes} new "
                "classes)."
            )
        self.base_classes = self.num_classes
        self.num_classes = self.net.num_classes
        self.learned_classes = tuple(int(c) for c in learned_classes)
        self.class_ids = tuple(int(c) for c in base_class_ids) + self.learned_classes

    def label_of(self, class_ids: Tensor) -> Tensor:
        """The model's labels of dataset classes ``class_ids`` (each must be one it knows)."""
        lookup = {class_id: label for label, class_id in enumerate(self.class_ids)}
        unknown = [int(c) for c in class_ids.tolist() if int(c) not in lookup]
        if unknown:
            raise GenlabError(
                f"class {unknown[0]} is not a class of this inverted run (it knows {list(self.class_ids)})."
            )
        return torch.tensor([lookup[int(c)] for c in class_ids.tolist()], dtype=torch.long)

    def learned_parameters(self) -> list[torch.nn.Parameter]:
        """The only weights inversion changes: the new embeddings of the sampling (EMA) net and of the live net."""
        return [self.ema_net.module.new_emb, self.net.new_emb]

    def load_frozen(self, state_dict: Mapping[str, Tensor]) -> None:
        """Load a base run's weights: every key but the new embeddings must match; those start at the mean class."""
        missing, unexpected = self.load_state_dict(dict(state_dict), strict=False)
        expected = {"net.new_emb", "ema_net.module.new_emb"}
        if unexpected or set(missing) != expected:
            raise GenlabError(
                f"the base checkpoint does not fit the inverted model (missing {sorted(set(missing) - expected)}, "
                f"unexpected {sorted(unexpected)})."
            )
        for net in (self.net, self.ema_net.module):
            net.init_new_embeddings()

    def invert(
        self,
        images: Tensor,
        labels: Tensor,
        steps: int,
        lr: float,
        batch_size: int,
        generator: torch.Generator,
    ) -> list[float]:
        """Optimise the new classes' embeddings of the EMA net on ``images`` (in [-1, 1]) with labels K..K+M−1.

        Each step draws ``batch_size`` of the images (with replacement), t and ε, and takes an Adam step
        on L_simple w.r.t. ``new_emb`` only; the live net gets the result. Returns the loss of every step.
        """
        if bool((labels < self.base_classes).any()) or bool((labels >= self.num_classes).any()):
            raise GenlabError("inversion labels must be the new classes' labels.")
        net = self.ema_net.module
        was_training = net.training
        net.eval()
        flags = {name: p.requires_grad for name, p in self.named_parameters()}
        self.requires_grad_(False)
        net.new_emb.requires_grad_(True)
        optimizer = torch.optim.Adam([net.new_emb], lr=lr)
        images, labels = images.to(self.device), labels.to(self.device)
        losses = []
        try:
            with torch.enable_grad():
                for _ in range(steps):
                    pick = torch.randint(0, len(images), (batch_size,), generator=generator, device=generator.device)
                    pick = pick.to(self.device)
                    loss = self.diffusion_loss(net, images[pick], labels[pick], generator)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    losses.append(float(loss.detach()))
                    progress.advance(1)
        finally:
            for name, parameter in self.named_parameters():
                parameter.requires_grad_(flags[name])
            net.train(was_training)
        with torch.no_grad():
            self.net.new_emb.copy_(net.new_emb)
        return losses
