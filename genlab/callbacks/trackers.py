"""Experiment trackers beside TensorBoard: MLflow and Weights & Biases through Lightning's loggers.

One place sends an image grid or the final figures to every logger of a run through that logger's own
API (TensorBoard ``add_image``, MLflow ``log_image``, W&B ``log_image``); the callbacks and the train
task call it instead of talking to one logger. Before a run starts, :func:`check_logger` refuses a
tracker whose package is missing (naming genlab's extra) or whose tracking server cannot be reached.
"""

from __future__ import annotations

import importlib
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig
from pytorch_lightning.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from torch import Tensor

from genlab.errors import GenlabError
from genlab.imaging import to_uint8

# The Python package each tracker's logger needs, and the genlab extra that installs it.
REQUIREMENTS: dict[type[Logger], tuple[str, str]] = {
    MLFlowLogger: ("mlflow", "mlflow"),
    WandbLogger: ("wandb", "wandb"),
}
# Seconds to wait for a tracking server before refusing the run.
PROBE_TIMEOUT = 5.0


def require(package: str, extra: str, what: str) -> ModuleType:
    """Import ``package`` (an optional dependency), or raise a GenlabError saying which genlab extra installs it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise GenlabError(
            f"{what} needs the Python package '{package}', which is not installed: "
            f"pip install 'genlab[{extra}]' (or pip install {package})."
        ) from None


def check_tracking_uri(uri: str, option: str) -> None:
    """Refuse an MLflow tracking URI whose server does not answer, or whose local store cannot be written."""
    if uri.startswith(("http://", "https://")):
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT).close()
        except urllib.error.HTTPError:
            return  # the server answered: MLflow reports what it does not accept
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise GenlabError(
                f"{option}={uri}: the MLflow tracking server cannot be reached ({reason}); training was not started. "
                "Start the server (mlflow server), fix the URI, or leave it out for the local SQLite store."
            ) from None
    elif uri.startswith(("sqlite:///", "file:")):
        path = Path(uri.removeprefix("sqlite:///").removeprefix("file://").removeprefix("file:"))
        folder = path.parent if uri.startswith("sqlite:") else path
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise GenlabError(f"{option}={uri}: the folder {folder} cannot be created ({err.strerror}).") from None


def check_logger(key: str, node: DictConfig) -> None:
    """Refuse ``logger.<key>`` when its package is missing or its MLflow store is unreachable."""
    cls = get_class(node["_target_"])
    for logger_class, (package, extra) in REQUIREMENTS.items():
        if issubclass(cls, logger_class):
            require(package, extra, f"logger={key}")
    if issubclass(cls, MLFlowLogger) and node.get("tracking_uri"):
        check_tracking_uri(str(node.tracking_uri), f"logger.{key}.tracking_uri")


def log_image(loggers: Iterable[Logger], tag: str, grid: Tensor, step: int) -> None:
    """Send one image (C, H, W) in [0, 1] to every logger that keeps images, through its own API."""
    picture = None
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(tag, grid, global_step=step)
            continue
        if picture is None:
            picture = to_uint8(grid.detach().float().cpu() * 2 - 1).permute(1, 2, 0).numpy()
            picture = picture[..., 0] if picture.shape[-1] == 1 else picture
        if isinstance(logger, MLFlowLogger):
            logger.experiment.log_image(logger.run_id, picture, key=tag.replace("/", "_"), step=step)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=tag, images=[picture], step=step)


def log_final_metrics(loggers: Iterable[Logger], metrics: Mapping[str, Any], step: int) -> None:
    """The end-of-run figures of a run's ``metrics.json`` to every logger (``fid``, ``kid_mean``, ...). Keys with a
    ``/`` (``train/loss``, ``test/acc``) were logged by Lightning as they were made and are not logged twice."""
    figures = {
        key: float(value)
        for key, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and "/" not in key and key != "global_step"
    }
    for logger in loggers:
        if figures:
            logger.log_metrics(figures, step=step)
        logger.save()


def close_loggers(loggers: Iterable[Logger]) -> None:
    """Finish the W&B run of this training (W&B keeps one run per process until it is finished)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()
