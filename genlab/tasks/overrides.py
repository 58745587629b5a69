"""Command-line overrides checked before Hydra runs: a typo gets "did you mean", not Hydra's report.

Hydra reports an unknown key (``trainer.max_epoch=3``) with a traceback-like text and exit status 1,
and suggests ``+trainer.max_epoch``, which then fails deep inside the Trainer. genlab composes the
command's config with the overrides first and turns each such problem into one paragraph that names
the key, the closest existing keys and where related settings live (exit status 2).
"""

from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path

from hydra.errors import ConfigCompositionException, OverrideParseException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from genlab.build import compose_config
from genlab.errors import GenlabError

# Where settings people often give as bare keys live ({keys}: the keys of that name in this config).
ADVICE = {
    "lr": "learning rates live in the optimizer nodes: {keys}.",
    "epochs": "the epoch budget is trainer.max_epochs (each model's default: model.epochs).",
    "max_epochs": "the epoch budget is trainer.max_epochs.",
    "max_steps": "the step budget is trainer.max_steps.",
    "batch_size": "the batch size is data.batch_size.",
    "image_size": "the image size is data.image_size.",
    "device": "the training device is trainer.accelerator (cpu, gpu, auto).",
}


# Options of the adversarial models only (configs/_base/diffaug.yaml): the advice names the models that have them.
ADVERSARIAL_OPTIONS = ("model.diffaug", "model.ada_")
ADVERSARIAL_ADVICE = (
    "DiffAugment and its adaptive probability augment what a discriminator sees, and model={model} has no "
    "discriminator: they are options of the adversarial models (model=gan, dcgan, cgan, pix2pix)."
)

# Keys whose value is a comma-separated list of names (model.diffaug=translation,cutout): outside a
# multirun Hydra calls such a value ambiguous, so genlab passes it as a list.
LIST_VALUED = ("model.diffaug",)


def comma_lists(args: list[str]) -> list[str]:
    """``model.diffaug=translation,cutout`` → ``model.diffaug=[translation,cutout]`` (not in a multirun, where
    a comma sweeps: there the list is written ``model.diffaug=[translation,cutout]``)."""
    if {"-m", "--multirun"} & set(args):
        return args
    out = []
    for arg in args:
        key, _, value = arg.partition("=")
        if key in LIST_VALUED and "," in value and not value.startswith(("[", "'", '"')):
            arg = f"{key}=[{value}]"
        out.append(arg)
    return out


def dotted_keys(node: DictConfig | ListConfig, prefix: str = "") -> list[str]:
    """Every key of a config as a dotted path (lists by index), without resolving interpolations."""
    keys = []
    items = node.items_ex(resolve=False) if isinstance(node, DictConfig) else enumerate(node)
    for key, value in items:
        path = f"{prefix}{key}"
        keys.append(path)
        if isinstance(value, DictConfig | ListConfig):
            keys += dotted_keys(value, f"{path}.")
    return keys


def suggestion(key: str, keys: list[str]) -> str:
    """ " Did you mean ...?" and where a bare setting lives, for an unknown ``key``."""
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.75)
    leaf = key.rsplit(".", 1)[-1]
    same_leaf = [k for k in keys if k.rsplit(".", 1)[-1] == leaf and k != key][:4]
    if close:
        return f"did you mean {' or '.join(close)}?"
    if leaf in ADVICE:
        return ADVICE[leaf].format(keys=", ".join(same_leaf))
    if same_leaf:
        return f"{leaf} is set as {', '.join(same_leaf)}."
    return "it is not a key of this command's config (`--cfg job` prints the whole config)."


def _unknown_key(err: BaseException) -> str | None:
    """The full key of a "key not in struct" error, following the exception chain."""
    while err is not None:
        if isinstance(err, OmegaConfBaseException) and getattr(err, "full_key", None):
            return str(err.full_key)
        err = err.__cause__ or err.__context__
    return None


def check_overrides(command: str, args: list[str]) -> DictConfig | None:
    """Compose ``command``'s config with ``args``; raise a GenlabError for a key it does not have.

    Returns the composed config (None when the arguments are left to Hydra: sweeps, extra config dirs).
    """
    overrides = [a for a in args if not a.startswith("-")]
    if len(overrides) != len(args) or any(a.startswith(("hydra.", "+hydra", "hydra/")) for a in overrides):
        return None
    try:
        return compose_config(command, overrides)
    except OverrideParseException as err:
        raise GenlabError(f"cannot read the overrides: {str(err).splitlines()[0]}") from None
    except (ConfigCompositionException, OmegaConfBaseException) as err:
        key = _unknown_key(err)
        if key is None:
            return None  # Hydra's own report is the best description
        base = compose_config(command, [o for o in overrides if not o.lstrip("+~").startswith(key)])
        if key.startswith(ADVERSARIAL_OPTIONS) and OmegaConf.select(base, "model.name") is not None:
            advice = ADVERSARIAL_ADVICE.format(model=base.model.name)
        else:
            advice = suggestion(key, dotted_keys(base))
        raise GenlabError(f"{key} is not an option of genlab {command}: {advice}") from None


def check_output_root(cfg: DictConfig) -> None:
    """Refuse a ``paths.output_root`` that cannot be created or written, before Hydra makes folders in it."""
    root = OmegaConf.select(cfg, "paths.output_root", default=None)
    if root is None:
        return
    path = Path(str(root)).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise GenlabError(
            f"paths.output_root={root} cannot be written ({err.strerror or type(err).__name__}): point it at a "
            f"folder you can write to (default: outputs under {os.getcwd()})."
        ) from None
