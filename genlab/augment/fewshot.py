"""Generative augmentation of classes the generator never saw (few-shot, held-out classes).

- :class:`DAGANAugmentation` (``augment=dagan``): DAGAN variations of each real training image, each
  labelled with its source image's label (the generator is never told the class);
- :class:`DAFusionAugmentation` (``augment=da_fusion``): SDEdit variations of each real image at several
  strengths, guided by the class embedding that class inversion learned for its class (DA-Fusion,
  Trabucco et al. 2023, with ``genlab invert`` in place of textual inversion).

Pools are built, cached and mixed into batches like the other generative arms (:mod:`genlab.tasks.synthetic`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from genlab import progress
from genlab.augment.synthetic import SDEditAugmentation, SyntheticAugmentation, positive_int
from genlab.capabilities import Edits, LearnedClasses, Varies
from genlab.data.classes import config_class_ids
from genlab.data.datasets import TensorSplit
from genlab.errors import GenlabError
from genlab.imaging import to_uint8, uint8_to_model_range


class DAGANAugmentation(SyntheticAugmentation):
    """``augment=dagan``: ``variations_per_image`` DAGAN variations of every real training image."""

    kind: ClassVar[str] = "dagan"

    def __init__(self, name: str = "dagan", variations_per_image: int = 10, **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.variations_per_image = positive_int("variations_per_image", variations_per_image)

    def check_source(self, model: Any, model_name: str, source: Path) -> None:
        if not isinstance(model, Varies):
            raise GenlabError(
                f"augment.source={source} is a {model_name} run: augment=dagan needs a DAGAN run (model=dagan), "
                "whose generator varies a real image within its class."
            )
        super().check_source(model, model_name, source)

    def needs_source_classes(self) -> bool:
        return False

    def options(self) -> dict[str, Any]:
        return {"variations_per_image": self.variations_per_image, **super().options()}

    def size(self, real: TensorSplit, num_classes: int) -> int:
        return len(real.labels) * self.variations_per_image

    def synthesize(self, model: Any, real: TensorSplit, generator: torch.Generator) -> TensorSplit:
        images = real.images.repeat_interleave(self.variations_per_image, 0)
        pools = []
        for start, stop in self._chunks(len(images)):
            with progress.part(stop - start):
                pools.append(to_uint8(model.vary(uint8_to_model_range(images[start:stop]), generator)).cpu())
        return TensorSplit(torch.cat(pools), real.labels.repeat_interleave(self.variations_per_image, 0))


class DAFusionAugmentation(SDEditAugmentation):
    """``augment=da_fusion``: SDEdit variations guided by each class's learned embedding (an inverted run).

    Args:
        data_classes, heldout_classes, num_classes: the classifier's ``data.classes``,
            ``data.heldout_classes`` and ``data.num_classes`` (interpolated): they say which dataset class
            each classifier label is, so each image is guided by its class's learned embedding.
        base: ``source=auto``: the class-conditional DDPM run to invert (a folder, or ``auto`` to train
            ``generator`` on the seen classes first).
        inversion: ``source=auto``: ``genlab invert`` settings (steps, lr, batch_size, vectors, seed, n_eval).
        **kwargs: as :class:`SDEditAugmentation` (strengths, variations_per_image, ...).
    """

    kind: ClassVar[str] = "da_fusion"

    def __init__(
        self,
        name: str = "da_fusion",
        data_classes: str | Sequence[int] | None = None,
        heldout_classes: Sequence[int] | None = None,
        num_classes: int = 0,
        base: str = "auto",
        inversion: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name, **kwargs)
        data = {"classes": data_classes, "heldout_classes": heldout_classes, "num_classes": num_classes}
        self.class_ids = config_class_ids(data)
        self.base = str(base)
        self.inversion = dict(inversion or {})

    def check_source(self, model: Any, model_name: str, source: Path) -> None:
        if not isinstance(model, LearnedClasses) or not isinstance(model, Edits):
            raise GenlabError(
                f"augment.source={source} is a {model_name} run that was not inverted: augment=da_fusion needs the "
                "run `genlab invert` wrote for the classifier's classes (or augment.source=auto with augment.base=RUN)."
            )
        missing = [c for c in self.class_ids if c not in model.class_ids]
        if missing:
            raise GenlabError(
                f"augment.source={source} learned no embedding of class {missing[0]} (it knows "
                f"{list(model.class_ids)}): invert the classifier's classes."
            )
        super().check_source(model, model_name, source)

    def needs_source_classes(self) -> bool:
        return False

    def guide_labels(self, model: Any, labels: Tensor) -> Tensor:
        return model.label_of(torch.as_tensor(self.class_ids)[labels])

    def options(self) -> dict[str, Any]:
        return {"class_ids": self.class_ids, **super().options()}
