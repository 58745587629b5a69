"""The OmegaConf resolvers genlab's configs use, registered once (when :mod:`genlab.build` is imported)."""

from __future__ import annotations

import hashlib
import math
import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

from omegaconf import OmegaConf

# Folder names are limited to 255 bytes on common file systems; a sweep over many overrides exceeds it.
MAX_DIRNAME = 120


def short_dirname(text: str, limit: int = MAX_DIRNAME) -> str:
    """``text`` if it fits in ``limit`` characters, else its start plus a hash of the whole (unique, stable)."""
    text = str(text)
    if len(text.encode()) <= limit:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    return f"{text.encode()[: limit - 11].decode(errors='ignore')}~{digest}"


def eval_output_root(run: str | None, sweep: str | None, output_root: str) -> str:
    """Hydra's run folder for ``genlab eval``: inside the run when it is one, else the sweep, else outputs/eval."""
    if run and (Path(str(run)) / ".hydra" / "config.yaml").is_file():
        return f"{run}/eval"
    if sweep:
        return f"{sweep}/eval"
    return f"{output_root}/eval"


def absolute_path(path: str) -> str:
    """``path`` made absolute (against the working directory), ``~`` expanded."""
    return str(Path(str(path)).expanduser().resolve())


def local_artifacts(tracking_uri: str) -> str | None:
    """MLflow artifacts beside a local store (``sqlite:///DIR/mlflow.db`` → ``DIR/mlartifacts``); None for a
    server, which keeps its own artifact store."""
    uri = str(tracking_uri)
    if not uri.startswith(("sqlite:///", "file:")):
        return None
    path = Path(uri.removeprefix("sqlite:///").removeprefix("file://").removeprefix("file:"))
    return str((path.parent if uri.startswith("sqlite:") else path) / "mlartifacts")


def wandb_offline() -> bool:
    """True unless a W&B API key is set (``WANDB_API_KEY`` or ``wandb login``'s netrc entry), so W&B never prompts."""
    if os.environ.get("WANDB_API_KEY"):
        return False
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        return netrc.netrc().authenticators(host) is None
    except (OSError, netrc.NetrcParseError):
        return True


def budget_steps(images: int | None, minutes: float | None, batch_size: int, batches_per_step: int = 1) -> int:
    """``trainer.max_steps`` of a budget of ``images`` training images seen (-1 = none: a ``minutes`` budget
    replaces it). A step that consumes ``batches_per_step`` batches (a GAN generator update after
    ``n_critic`` critic updates) counts them all: steps = ceil(images / (batch_size · batches_per_step))."""
    if minutes is not None or images is None:
        return -1
    return max(1, math.ceil(int(images) / (int(batch_size) * int(batches_per_step))))


def budget_time(minutes: float | None) -> str | None:
    """``trainer.max_time`` ("DD:HH:MM:SS") of a budget of ``minutes`` of wall-clock time, None when not set."""
    if minutes is None:
        return None
    seconds = max(1, round(float(minutes) * 60))
    return f"{seconds // 86400:02d}:{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


RESOLVERS = {
    "short_dirname": short_dirname,
    "genlab_eval_dir": eval_output_root,
    "basename": lambda path: Path(str(path)).name,
    "abspath": absolute_path,
    "mlflow_artifacts": local_artifacts,
    "wandb_offline": wandb_offline,
    "budget_steps": budget_steps,
    "budget_time": budget_time,
}


def register() -> None:
    """Register every resolver of :data:`RESOLVERS` (idempotent)."""
    for name, function in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
