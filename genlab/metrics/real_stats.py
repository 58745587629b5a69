"""On-disk cache of the reference split's features, keyed by everything they depend on.

The key (dataset and its config, the split's images, image size, feature-network identity, n) is hashed into
the file name and stored inside the file; a file whose stored key differs is never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from genlab.errors import GenlabError
from genlab.io import atomic_torch_save, safe_torch_load
from genlab.metrics.features import FeatureNetwork

log = logging.getLogger("genlab")

# Data settings that change how batches are loaded, not which images a split holds.
LOADER_KEYS = ("batch_size", "num_workers", "download", "hflip_p", "fid_features", "_target_")


def stats_key(data_cfg: DictConfig, split: str, network: FeatureNetwork, n: int, fingerprint: str) -> dict[str, Any]:
    """Everything the cached real features depend on, the split's images (``fingerprint``) included."""
    data = OmegaConf.to_container(data_cfg, resolve=True)
    dataset_config = {k: v for k, v in data.items() if k not in LOADER_KEYS}
    return {
        "dataset": str(data_cfg.name),
        "split": split,
        "image_size": int(data_cfg.image_size),
        "features": network.identity,
        "n": int(n),
        "fingerprint": fingerprint,
        "dataset_config": dataset_config,
    }


def stats_path(cache_dir: str | Path, key: dict[str, Any]) -> Path:
    """``<cache_dir>/real_stats/<dataset>_<split>_<size>px_<features>_n<n>_<hash of the key>.pt``."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    name = f"{key['dataset']}_{key['split']}_{key['image_size']}px_{key['features'].split(':')[0]}_n{key['n']}"
    return Path(cache_dir).expanduser() / "real_stats" / f"{name}_{digest}.pt"


def load_cached(path: Path, key: dict[str, Any], n: int) -> Tensor | None:
    """The ``n`` cached features in ``path`` when the file's stored key is ``key``, else None (with a warning)."""
    if not path.is_file():
        return None
    try:
        blob = safe_torch_load(path)
    except GenlabError as err:
        log.warning("ignoring the unreadable statistics cache %s: %s", path, err)
        return None
    if isinstance(blob, dict) and blob.get("key") == key and blob["features"].shape[0] == n:
        return blob["features"]
    log.warning("ignoring the statistics cache %s: it was computed for another key", path)
    return None


def real_batches(datamodule: Any, split: str, n: int) -> Iterator[Tensor]:
    """The first ``n`` images of a split, in batches, in [-1, 1]."""
    seen = 0
    for images, _ in datamodule.dataloader(split):
        take = min(len(images), n - seen)
        yield images[:take]
        seen += take
        if seen >= n:
            return


def extract(network: FeatureNetwork, batches: Iterator[Tensor], device: torch.device) -> Tensor:
    """Features of every batch (float64, on the CPU)."""
    return torch.cat([network(batch.to(device)).double().cpu() for batch in batches])


def real_features(
    datamodule: Any,
    data_cfg: DictConfig,
    split: str,
    n: int,
    network: FeatureNetwork,
    cache_dir: str | Path,
    device: torch.device,
) -> Tensor:
    """Features of the first ``n`` images of ``split``: from the cache when its key matches, else computed."""
    key = stats_key(data_cfg, split, network, n, datamodule.fingerprint(split))
    path = stats_path(cache_dir, key)
    cached = load_cached(path, key, n)
    if cached is not None:
        return cached
    features = extract(network, real_batches(datamodule, split, n), device)
    atomic_torch_save({"key": key, "features": features}, path)
    return features


def stored_images(datamodule: Any, split: str, n: int) -> Tensor:
    """The first ``n`` images of ``split`` as stored: uint8 (n, C, H, W), never augmented."""
    dataset = datamodule.dataset(split)
    return torch.stack([dataset.load_uint8(i) for i in range(n)])


def stored_image_features(
    datamodule: Any,
    data_cfg: DictConfig,
    split: str,
    n: int,
    network: FeatureNetwork,
    cache_dir: str | Path,
    device: torch.device,
) -> tuple[Tensor, Tensor]:
    """The first ``n`` images of ``split`` as stored (uint8, without the training augmentation a training
    datamodule's loader applies) and their features, cached under the key of :func:`real_features` + "stored"."""
    images = stored_images(datamodule, split, n)
    key = {**stats_key(data_cfg, split, network, n, datamodule.fingerprint(split)), "images": "stored"}
    path = stats_path(cache_dir, key)
    cached = load_cached(path, key, n)
    if cached is not None:
        return images, cached
    batches = (chunk.float().div(127.5).sub(1) for chunk in images.split(256))
    features = extract(network, batches, device)
    atomic_torch_save({"key": key, "features": features}, path)
    return images, features
