"""Class selections of a labelled dataset, for studies of classes a generator never saw.

``data.heldout_classes`` declares the classes a study holds out of its generators; ``data.classes``
chooses which classes a run keeps, relabelled 0..K'−1 in the order given:

- ``null``: every class (labels unchanged);
- ``seen``: every class but the held-out ones (what the study's generators train on);
- ``heldout``: the held-out classes (the few-shot classifier's task);
- a list of dataset class ids, e.g. ``[5,6,7,8,9]``.

``data.num_classes`` is the number of classes the run keeps (models size their outputs by it). The
run config therefore records which dataset classes each model saw: :func:`config_class_ids`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from genlab.errors import GenlabError

SELECTIONS = ("seen", "heldout")


def _int_list(value: Any, option: str) -> list[int]:
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else None
    if not values or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise GenlabError(f"{option}={value} must be a non-empty list of class numbers, e.g. [5,6,7,8,9].")
    if len(set(values)) != len(values):
        raise GenlabError(f"{option}={list(values)} names a class twice.")
    return values


def check_known(values: Sequence[int], total: int, option: str, dataset: str) -> None:
    """Every class of ``values`` exists in a dataset of ``total`` classes."""
    unknown = [v for v in values if not 0 <= v < total]
    if unknown:
        raise GenlabError(
            f"{option}={list(values)} names class {unknown[0]}, which data={dataset} does not have "
            f"(its classes are 0..{total - 1})."
        )


def heldout_list(heldout: Any, total: int, dataset: str) -> list[int]:
    """The held-out classes, checked: known, and not every class (the generators must see some)."""
    values = _int_list(heldout, "data.heldout_classes")
    check_known(values, total, "data.heldout_classes", dataset)
    if len(values) >= total:
        raise GenlabError(
            f"data.heldout_classes={values} holds out every class of data={dataset}: the generators would have "
            "nothing to train on. Hold out some of the classes, e.g. half of them."
        )
    return values


def class_ids(classes: Any, heldout: Any, total: int, dataset: str = "the dataset") -> list[int]:
    """The dataset classes a run keeps, in label order (label i is dataset class ``ids[i]``)."""
    held = heldout_list(heldout, total, dataset) if heldout is not None else []
    if classes is None:
        return list(range(total))
    if isinstance(classes, str):
        if classes not in SELECTIONS:
            raise GenlabError(f"data.classes={classes} is not one of {', '.join(SELECTIONS)}, null or a list.")
        if not held:
            raise GenlabError(f"data.classes={classes} refers to data.heldout_classes, which is not set.")
        return held if classes == "heldout" else [c for c in range(total) if c not in held]
    values = _int_list(classes, "data.classes")
    check_known(values, total, "data.classes", dataset)
    return values


def config_class_ids(data: Mapping[str, Any]) -> list[int]:
    """The dataset classes a run's data config kept (read from the config alone, no data loaded)."""
    classes, heldout, kept = data.get("classes"), data.get("heldout_classes"), int(data.get("num_classes") or 0)
    if isinstance(classes, str) and classes == "seen" and heldout is not None:
        held = set(heldout)
        total = kept + len(held)
        return [c for c in range(total) if c not in held]
    if isinstance(classes, str) and classes == "heldout":
        return list(heldout or [])
    if classes is None:
        return list(range(kept))
    return list(classes)


def select(labels: Tensor, ids: Sequence[int]) -> tuple[Tensor, Tensor]:
    """(indices of the images of classes ``ids``, their labels renumbered to positions in ``ids``)."""
    size = max([int(labels.max()) if len(labels) else 0, *ids]) + 2
    lookup = torch.full((size,), -1, dtype=torch.long)
    lookup[torch.as_tensor(list(ids))] = torch.arange(len(ids))
    mapped = lookup[labels.clamp(min=-1)]
    keep = (mapped >= 0).nonzero().flatten()
    return keep, mapped[keep]


def select_splits(splits: dict[str, Any], classes: Any, heldout: Any, num_classes: int, dataset: str):
    """Keep the images of ``classes`` in every split (relabelled 0..K'−1) after checking ``heldout``.

    Returns (the splits, the kept dataset class ids in label order).
    """
    labels = [split.labels for split in splits.values() if len(split.labels)]
    total = max(int(part.max()) for part in labels) + 1 if labels else 0
    if num_classes < 1 or total < 1:
        raise GenlabError(f"data.classes and data.heldout_classes need labels; data={dataset} has none.")
    ids = class_ids(classes, heldout, total, dataset)
    if len(ids) != num_classes:
        raise GenlabError(
            f"data.classes={classes} keeps {len(ids)} classes ({', '.join(map(str, ids))}) but "
            f"data.num_classes={num_classes}: set data.num_classes={len(ids)} (models read it to size their outputs)."
        )
    out = {}
    for name, split in splits.items():
        keep, relabelled = select(split.labels, ids)
        out[name] = split.subset(keep)
        out[name].labels = relabelled
    return out, ids
