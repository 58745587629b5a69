"""Recognising train-run folders (light: no torch import, so the CLI can check early)."""

from __future__ import annotations

from pathlib import Path

from genlab.errors import GenlabError


def check_run_dir(run_dir: str | Path | None, option: str = "run") -> Path:
    """The run folder as a Path, or a GenlabError naming ``option`` and saying why it is not one."""
    if run_dir in (None, "", "???"):
        raise GenlabError(
            f"{option}= is required: pass the folder of a train run, e.g. run=outputs/train/<date_time>_<model>_<data>."
        )
    run_path = Path(str(run_dir)).expanduser()
    config_file = run_path / ".hydra" / "config.yaml"
    if not config_file.is_file():
        raise GenlabError(
            f"{option}={run_dir} is not a genlab run folder: {config_file} does not exist. "
            "Pass the folder that `genlab train` created, e.g. outputs/train/<date_time>_<model>_<data>."
        )
    return run_path
