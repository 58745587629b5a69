"""The reference classifier's cache: a genlab CNN trained on the evaluated dataset, for
``features=classifier`` and the class metrics.

The classifier is keyed by the identity of the images it learned from (a fingerprint of the
dataset's full training split, see :func:`genlab.data.base.fingerprint`) besides the dataset's name
and shape, so a classifier trained on one folder never serves another of the same size. Training it
is the scoring layer's job (:mod:`genlab.scoring`); this module names, loads and checks the files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genlab.errors import GenlabError
from genlab.io import safe_torch_load
from genlab.metrics.features import ClassifierFeatures, file_digest
from genlab.nets.classifier import SimpleCNN

INFO_KEY = "genlab_reference_classifier"
# What a classifier must share with the evaluated data to give comparable features.
MATCH_KEYS = ("data", "image_size", "channels", "num_classes", "fingerprint")


def reference_signature(
    name: str, image_size: int, channels: int, num_classes: int, split_seed: int, fingerprint: str
) -> dict[str, Any]:
    """The dataset facts a classifier (and the features it gives) depends on."""
    return {
        "data": str(name),
        "image_size": int(image_size),
        "channels": int(channels),
        "num_classes": int(num_classes),
        "split_seed": int(split_seed),
        "fingerprint": str(fingerprint),
    }


def cache_path(signature: Mapping[str, Any], training: Mapping[str, Any], cache_dir: str | Path) -> Path:
    """Cache file keyed by the signature (dataset, size, images) and a hash of the training settings."""
    text = json.dumps({"signature": dict(signature), "training": dict(training)}, sort_keys=True, default=str)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    name = f"{signature['data']}_{signature['image_size']}px_{signature['channels']}ch_{digest}.pt"
    return Path(cache_dir).expanduser() / "reference_classifiers" / name


def load_reference_file(path: Path) -> ClassifierFeatures:
    """A reference classifier file written by genlab (``{state_dict, genlab_reference_classifier}``)."""
    checkpoint = safe_torch_load(path)
    if not isinstance(checkpoint, dict) or INFO_KEY not in checkpoint or "state_dict" not in checkpoint:
        raise GenlabError(f"{path} is not a genlab reference classifier file (no '{INFO_KEY}' entry).")
    info = dict(checkpoint[INFO_KEY])
    net = SimpleCNN(info["channels"], info["num_classes"], info["image_size"], widths=info["widths"])
    try:
        net.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        raise GenlabError(f"{path} does not match its own description ({str(err).splitlines()[0]}).") from None
    return ClassifierFeatures(net, f"classifier:{file_digest(path)}", info)


def check_matches(classifier: ClassifierFeatures, wanted: Mapping[str, Any], source: str) -> None:
    """Refuse a classifier trained on another dataset, image size, channel count, class count or other images."""
    got = classifier.info
    diffs = [f"{k}={got.get(k)} (needed {wanted[k]})" for k in MATCH_KEYS if k in wanted and got.get(k) != wanted[k]]
    if diffs:
        raise GenlabError(
            f"{source} was trained on other data: {', '.join(diffs)}. Its features would score these images in "
            f"the wrong space. Pass a classifier trained on data={wanted['data']} at image_size="
            f"{wanted['image_size']} (the same images), or omit eval.classifier to train and cache one."
        )
