"""A device-resident data path for in-memory datasets (``data.on_device=true``).

The training split's uint8 tensors are copied to the training device once; the DataLoader then
yields only the index batches, and each batch is gathered (and converted to float) on the device
after Lightning transfers the indices. No image crosses the host-device link after the first batch.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from genlab.errors import GenlabError

RESIDENT_TENSORS = ("images", "labels", "inputs")


class IndexBatches(Dataset):
    """Indexed with a list of indices, returns that index batch as a LongTensor."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: Sequence[int] | Tensor) -> Tensor:
        return torch.as_tensor(index, dtype=torch.long)


def resident_copy(dataset: Dataset, device: torch.device) -> Dataset:
    """A shallow copy of an in-memory dataset whose tensors live on ``device``."""
    clone = copy.copy(dataset)
    for name in RESIDENT_TENSORS:
        if isinstance(getattr(dataset, name, None), Tensor):
            setattr(clone, name, getattr(dataset, name).to(device))
    return clone


def check_on_device(on_device: object, dataset: Dataset, in_memory: bool, name: str) -> None:
    """Refuse ``data.on_device`` values that are not booleans, and datasets read file by file."""
    if not isinstance(on_device, bool):
        raise GenlabError(f"data.on_device={on_device} must be true or false.")
    if on_device and not in_memory:
        raise GenlabError(
            f"data.on_device=true keeps in-memory datasets on the training device, but data={name} is read "
            f"file by file ({type(dataset).__name__}): set data.on_device=false (and use data.num_workers "
            "to read files in parallel)."
        )
