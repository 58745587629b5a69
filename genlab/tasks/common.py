"""What every command shares: error reporting, the command's own options, the folder it writes."""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from lightning_fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from genlab.build import CONFIG_DIR, compose_config
from genlab.errors import GenlabError, Interrupted, message_of
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
        return message_of(err)
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


def run_task(task: Callable[[DictConfig], Any], cfg: DictConfig, cleanup: Callable[[], None] | None = None) -> Any:
    """Run a command, turning user errors into one clear message and exit status 2.

    ``cleanup`` removes what the command created when it fails (its Hydra output folder inside an
    existing run, or a new run folder that holds no checkpoint), so a failed command leaves no half-made
    folder. Set ``GENLAB_DEBUG=1`` to see the full traceback instead.
    """
    try:
        check_integer_options(cfg)
        set_threads(cfg)
        return task(cfg)
    except Interrupted as stop:
        print(f"genlab: {stop}", file=sys.stderr)
        raise SystemExit(stop.exit_code) from None
    except BaseException as err:
        message = user_error_message(err) if isinstance(err, Exception) else None
        if message is not None and not os.environ.get("GENLAB_DEBUG"):
            report(message)
        if cleanup is not None:
            cleanup()
        if message is None or os.environ.get("GENLAB_DEBUG"):
            raise
        raise SystemExit(2) from None


def discard(out_dir: Path) -> None:
    """Remove a failed command's output folder, and its parent when that is left empty (``sample/``, ``eval/``,
    ``export/``, ``tune/``)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).is_relative_to(out_dir.resolve()):
            logging.getLogger().removeHandler(handler)
            handler.close()
    if out_dir.is_dir():
        shutil.rmtree(out_dir, ignore_errors=True)
    parent = out_dir.parent
    if parent.name in ("sample", "eval", "export", "tune") and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()


def discard_untrained(run_dir: Path) -> None:
    """Remove a new run folder that a failed ``train`` left before its first training step (no checkpoint,
    no step recorded): the printed message says why, and there is nothing to resume or look at."""
    record = run_dir / "metrics.json"
    stepped = record.is_file() and json.loads(record.read_text()).get("global_step", 0) > 0
    if run_dir.is_dir() and not stepped and not any(run_dir.glob("checkpoints/*.ckpt")):
        discard(run_dir)


def set_threads(cfg: DictConfig) -> None:
    """torch's CPU threads: ``threads=N``, else cores ÷ parallel jobs under a joblib sweep, else torch's default.

    Two processes that each use every core spin against each other and run many times slower.
    """
    threads = cfg.get("threads")
    if threads is None and HydraConfig.initialized():
        jobs = OmegaConf.select(HydraConfig.get(), "launcher.n_jobs", default=None)
        if isinstance(jobs, int) and jobs != 1:
            jobs = jobs if jobs > 0 else os.cpu_count() or 1
            threads = max(1, (os.cpu_count() or 1) // jobs)
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise GenlabError(f"threads={threads} must be an integer ≥ 1 (torch CPU threads of this process), or null.")
    torch.set_num_threads(threads)
    log.info("torch CPU threads: %d", threads)


def primary_keys(config_name: str) -> set[str]:
    """Top-level keys of a command's composed primary config (its own options and groups)."""
    return set(compose_config(config_name, []).keys())


def config_groups(config_name: str) -> set[str]:
    """The config groups of a command's defaults list (``experiment``, ``eval_settings``, ...): chosen as
    ``group=option``, never generation options."""
    choices = compose_config(config_name, [], return_hydra_config=True).hydra.runtime.choices
    return {group for group in choices if not group.startswith("hydra/")}


def plus_unknown_keys(args: list[str], config_name: str) -> list[str]:
    """``key=value`` arguments whose key the command's config lacks become ``+key=value``.

    They are the model's generation options (``sampler=ddim steps=20``, ``truncation=1.5``); the model
    declares them, and checks and names them when the command runs.
    """
    known = primary_keys(config_name) | config_groups(config_name)
    out = []
    for arg in args:
        key = arg.split("=", 1)[0]
        plain = "=" in arg and not arg.startswith(("+", "~", "-")) and "." not in key and "@" not in key
        out.append(f"+{arg}" if plain and key not in known else arg)
    return out


def extra_options(cfg: DictConfig, config_name: str, accepted: Mapping[str, str]) -> dict[str, Any]:
    """The generation options given to a command (the keys of ``cfg`` its primary config does not have),
    each checked against what the run's model ``accepted``; a typo gets "did you mean"."""
    known = primary_keys(config_name)
    options = {key: cfg[key] for key in cfg if key not in known}
    for key, value in options.items():
        if key not in accepted:
            close = difflib.get_close_matches(key, [*accepted, *known], n=2, cutoff=0.7)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            takes = ", ".join(sorted(accepted)) or "no sampling options"
            raise GenlabError(
                f"{key}={value} is not an option of genlab {config_name} nor of this run's model: {hint}"
                f"(the model takes {takes}; `genlab sample run=DIR options=true` lists them)."
            )
    return options
