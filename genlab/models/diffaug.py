"""DiffAugment in the adversarial models' training steps, at a fixed or adaptive (ADA) probability.

The model config's flat options build it (every adversarial model yaml includes
``configs/_base/diffaug.yaml``): ``model.diffaug`` (policy, null = off), ``model.diffaug_p`` (a
probability or ``adaptive``), ``model.diffaug_<strength>`` and ``model.ada_<setting>``. The module
augments real and fake images before each discriminator update and the fakes of each generator
update (:mod:`genlab.augment.diffaug`); with ``adaptive``, p follows ADA's controller
(:mod:`genlab.augment.ada`) fed with D's verdicts on the augmented real images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

from genlab.augment.ada import AdaptiveAugmentProbability
from genlab.augment.diffaug import DiffAugment
from genlab.errors import GenlabError

ADAPTIVE = "adaptive"


class DiscriminatorAugment:
    """The augmentation of what a discriminator sees, and (when adaptive) the controller of its p.

    Args:
        augment: the DiffAugment transform (its ``p`` is set by ``controller`` when there is one).
        controller: ADA's controller for ``diffaug_p=adaptive``, else None (fixed p).
    """

    def __init__(self, augment: DiffAugment, controller: AdaptiveAugmentProbability | None = None) -> None:
        self.augment = augment
        self.controller = controller
        if controller is not None:
            augment.p = controller.p

    @property
    def adaptive(self) -> bool:
        return self.controller is not None

    def __call__(self, *images: Tensor) -> Tensor | tuple[Tensor, ...]:
        """One random draw per image, shared by the tensors of one call (a pix2pix pair)."""
        return self.augment(*images)

    @property
    def p(self) -> float:
        """The current augmentation probability."""
        return self.augment.p

    def observe(self, realness: Tensor) -> None:
        """Feed D's signed verdicts on one batch of (augmented) real images to the controller (fixed p: nothing)."""
        if self.controller is not None:
            self.augment.p = self.controller.update(realness)

    def state_dict(self) -> dict[str, Any]:
        """The controller's state (p, r_t, partial interval); empty for a fixed p."""
        return self.controller.state_dict() if self.controller is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.controller is not None and state:
            self.controller.load_state_dict(state)
            self.augment.p = self.controller.p


def build_discriminator_augment(
    policy: str | Sequence[str] | None,
    p: float | str,
    strengths: dict[str, float],
    ada: dict[str, Any],
) -> DiscriminatorAugment | None:
    """The augmentation of the model options, or None when ``policy`` is null (training unchanged).

    Args:
        policy: ``model.diffaug``, e.g. ``"translation,cutout"``; None turns augmentation off.
        p: ``model.diffaug_p``: a probability in [0, 1] or ``"adaptive"``.
        strengths: DiffAugment's keyword arguments (``translation_ratio``, ``cutout_ratio``, ...).
        ada: the controller's keyword arguments (``target``, ``speed_images``, ``interval``, ``p_init``).
    """
    adaptive = p == ADAPTIVE
    if not adaptive and (isinstance(p, bool) or not isinstance(p, int | float)):
        raise GenlabError(f"model.diffaug_p={p} must be a probability in [0, 1] or {ADAPTIVE} (ADA's controller).")
    if policy is None:
        if adaptive or p != 1:
            raise GenlabError(
                f"model.diffaug_p={p} was given but model.diffaug is null (augmentation off): name a policy, "
                "e.g. model.diffaug=translation,cutout."
            )
        return None
    augment = DiffAugment(policy, p=0.0 if adaptive else float(p), **strengths)
    return DiscriminatorAugment(augment, AdaptiveAugmentProbability(**ada) if adaptive else None)
