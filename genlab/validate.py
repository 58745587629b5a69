"""Type checks of the integer options every command may be given (the yaml configs are untyped)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from genlab.errors import GenlabError

# Integer options (where present in a command's config) and their smallest allowed value.
INTEGER_OPTIONS: dict[str, int | None] = {
    "seed": None,
    "threads": 1,
    "n": 1,
    "steps": 1,
    "trainer.max_epochs": -1,
    "trainer.max_steps": -1,
    "trainer.log_every_n_steps": 1,
    "trainer.num_nodes": 1,
    "data.batch_size": 1,
    "callbacks.checkpoint.every_n_train_steps": 0,
}


def check_integer_options(cfg: DictConfig) -> None:
    """Raise :class:`GenlabError` naming the first integer option given a non-integer or too small value."""
    for key, minimum in INTEGER_OPTIONS.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise GenlabError(f"{key}={value} must be an integer.")
        if minimum is not None and value < minimum:
            raise GenlabError(f"{key}={value} must be an integer >= {minimum}.")
