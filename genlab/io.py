"""Atomic file writes and safe checkpoint loading."""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from genlab.errors import GenlabError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The single-number entries of a metrics dict (tensors or numbers) as floats, for JSON."""
    out = {}
    for key, value in metrics.items():
        if (isinstance(value, torch.Tensor) and value.numel() == 1) or (
            isinstance(value, int | float) and not isinstance(value, bool)
        ):
            out[key] = float(value)
    return out


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file, then rename: a kill mid-write keeps the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def safe_torch_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint or tensor file with ``weights_only=True``; never runs pickled code.

    Raises :class:`GenlabError` naming the file when it is missing, corrupt or carries objects
    that are not plain tensors and containers.
    """
    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"checkpoint '{path}' does not exist.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise GenlabError(
                f"refused to load '{path}': it contains pickled objects other than tensors "
                "(possibly code). genlab only loads plain weights; rebuild the checkpoint with "
                "genlab or load it yourself if you trust its origin."
            ) from None
        raise GenlabError(f"checkpoint '{path}' is corrupt or not a torch file ({err}).") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise GenlabError(
            f"checkpoint '{path}' is corrupt or truncated and cannot be read "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})."
        ) from None


@contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if needed): parallel sweep jobs build a shared cache entry once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
