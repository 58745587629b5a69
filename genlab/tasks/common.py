"""What every command shares: error reporting, the command's own options, the folder it writes."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from lightning_fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig

from genlab.build import CONFIG_DIR, compose_config
from genlab.errors import GenlabError
from genlab.validate import check_integer_options

log = logging.getLogger("genlab")

# Keep the console about the run: drop Lightning's advertisement and a torch-internal deprecation notice.
logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
    lambda record: "litlogger" not in record.getMessage()
)
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")

CONFIG_PATH = str(CONFIG_DIR)


def user_error_message(err: BaseException) -> str | None:
    """The message to show for an error the user can fix, or None for a bug."""
    if isinstance(err, GenlabError):
        return str(err)
    if isinstance(err, MisconfigurationException):
        return f"the trainer settings do not fit together: {err} (see the trainer.* and callbacks.* options)."
    if isinstance(err, InstantiationException):
        cause = err.__cause__
        if isinstance(cause, GenlabError | MisconfigurationException):
            return user_error_message(cause)
        node = re.search(r"full_key: (\S+)", str(err))
        argument = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
        if node and argument:
            key = f"{node.group(1)}.{argument.group(1)}"
            return f"{key} is not an argument of {node.group(1)}'s _target_: remove it or check its spelling."
        if node and isinstance(cause, ValueError | TypeError):
            return f"{node.group(1)}: {cause} (check the options of {node.group(1)})."
        return " ".join(str(err).split())
    return None


def report(message: str) -> None:
    """Print ``genlab: error: <message>`` on stderr and into the command's log file."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    print(f"genlab: error: {message}", file=sys.stderr)


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig, cleanup: Path | None = None) -> Any:
    """Run a command, turning user errors into one clear message and exit status 2.

    ``cleanup``: a folder the command created (its Hydra output folder inside an existing run) that is
    removed when the command fails, so a failed command leaves the run folder as it was. Set
    ``GENLAB_DEBUG=1`` to see the full traceback instead.
    """
    try:
        check_integer_options(cfg)
        return task(cfg)
    except BaseException as err:
        message = user_error_message(err) if isinstance(err, Exception) else None
        if message is not None and not os.environ.get("GENLAB_DEBUG"):
            report(message)
        if cleanup is not None:
            discard(cleanup)
        if message is None or os.environ.get("GENLAB_DEBUG"):
            raise
        raise SystemExit(2) from None


def discard(out_dir: Path) -> None:
    """Remove a failed command's output folder, and its parent when that is left empty (``sample/``, ``eval/``)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).is_relative_to(out_dir.resolve()):
            logging.getLogger().removeHandler(handler)
            handler.close()
    if out_dir.is_dir():
        shutil.rmtree(out_dir, ignore_errors=True)
    parent = out_dir.parent
    if parent.name in ("sample", "eval") and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()


def primary_keys(config_name: str) -> set[str]:
    """Top-level keys of a command's composed primary config (its own options and groups)."""
    return set(compose_config(config_name, []).keys())


def plus_unknown_keys(args: list[str], config_name: str) -> list[str]:
    """``key=value`` arguments whose key the command's config lacks become ``+key=value``.

    They are the model's generation options (``sampler=ddim steps=20``, ``truncation=1.5``); the model
    declares them, and checks and names them when the command runs.
    """
    known = primary_keys(config_name)
    out = []
    for arg in args:
        key = arg.split("=", 1)[0]
        plain = "=" in arg and not arg.startswith(("+", "~", "-")) and "." not in key and "@" not in key
        out.append(f"+{arg}" if plain and key not in known else arg)
    return out


def extra_options(cfg: DictConfig, config_name: str) -> dict[str, Any]:
    """The generation options given to a command: the keys of ``cfg`` its primary config does not have."""
    known = primary_keys(config_name)
    return {key: cfg[key] for key in cfg if key not in known}
