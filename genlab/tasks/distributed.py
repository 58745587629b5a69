"""Lightning DDP inside Hydra runs and sweeps.

Lightning starts ranks >= 1 by re-executing ``python -m genlab.__main__`` with ``sys.argv[1:]`` and
``hydra.run.dir=<HydraConfig run.dir>``. Inside a multirun job that would start the whole sweep
again in a different folder, so :func:`distributed_job` points the child ranks at the current job:
its own overrides and its own output folder. When the job ends it destroys the process group and
removes the rendezvous variables Lightning put into the environment, so the next sweep job sets up
DDP afresh (otherwise ``LOCAL_RANK`` left behind makes it wait for children it never starts).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict, read_write

# What Lightning's subprocess launcher writes into os.environ of rank 0.
LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def _point_child_ranks_at_this_job() -> None:
    """In a multirun job: child ranks get this job's overrides and run in this job's folder."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return
    sys.argv = [sys.argv[0], *map(str, hydra_cfg.overrides.task)]
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


def release_process_group() -> None:
    """Destroy the default process group if one is initialised (a no-op in single-process runs)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed_job() -> Iterator[None]:
    """Wrap fitting/testing of one run: child ranks see this job only; DDP is torn down afterwards."""
    saved_env = {key: os.environ.get(key) for key in LAUNCHER_ENV}
    saved_argv = list(sys.argv)
    _point_child_ranks_at_this_job()
    try:
        yield
    finally:
        release_process_group()
        sys.argv = saved_argv
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
