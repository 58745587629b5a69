"""genlab: a config-driven experiment runner for image generative models and data augmentation.

The Python API (loaded on first use, so ``import genlab`` stays light)::

    import genlab

    run = genlab.train(["model=dcgan", "trainer.max_epochs=5"])   # a new run folder, as `genlab train`
    run = genlab.Run.load("outputs/train/<date_time>_dcgan_digits")
    images = run.sample(16, seed=0).images                        # (16, C, H, W) in [-1, 1]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"
__all__ = ["Run", "train"]

if TYPE_CHECKING:
    from genlab.api import Run


def train(overrides: list[str] | None = None) -> Run:
    """Train as ``python -m genlab train <overrides>`` does and return the new run, loaded.

    The run folder is ``<paths.output_root>/train/<date_time>_<model>_<data>`` with its saved config,
    so ``genlab sample``/``eval`` and :meth:`Run.load` work on it as on any run.
    """
    from genlab.tasks.train import train_in_python

    return train_in_python(list(overrides or []))


def __getattr__(name: str) -> Any:
    if name == "Run":
        from genlab.api import Run

        return Run
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")
