"""``genlab demo run=DIR [port=7860] [host=127.0.0.1]``: a local web page (Gradio) to play with a trained run.

The page is :func:`genlab.tasks.demo_page.build_page`; this command loads the run, checks that the
port is free, serves the page on ``host:port`` (the loopback address unless ``host=`` says otherwise),
prints its URL and runs until Ctrl-C. Needs the ``demo`` extra (``pip install 'genlab[demo]'``). It
writes nothing into the run folder (Gradio keeps uploads in its temporary folder).
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import Any

import hydra
from omegaconf import DictConfig

from genlab.api import Run
from genlab.callbacks.trackers import require
from genlab.errors import GenlabError
from genlab.tasks.common import CONFIG_PATH, run_task
from genlab.tasks.demo_page import build_page

log = logging.getLogger("genlab")


def check_port(host: str, port: Any) -> int:
    """``port`` as an int, refused when it is not one or another program listens on it."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise GenlabError(f"port={port} must be an integer in 1..65535.")
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise GenlabError(f"port={port} on {host} is in use: choose another, e.g. port={port + 1}.") from None
            raise GenlabError(f"host={host} port={port} cannot be served ({err.strerror}).") from None
    return port


def serve(page: Any, host: str, port: int, gr: Any, block: bool = True) -> str:
    """Start serving ``page``; returns its URL (and, with ``block``, serves until Ctrl-C)."""
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    _, url, _ = page.launch(
        server_name=host, server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False, theme=theme
    )
    print(f"genlab demo: {url} (Ctrl-C stops it)", flush=True)
    if block:
        page.block_thread()
    return url


def demo(cfg: DictConfig) -> None:
    """Load the run and serve its page until Ctrl-C."""
    gr = require("gradio", "demo", "genlab demo")
    port = check_port(str(cfg.host), cfg.port)
    run = Run.load(cfg.run, cfg.ckpt, cfg.device)
    serve(build_page(run, gr), str(cfg.host), port, gr)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="demo")
def main(cfg: DictConfig) -> None:
    """Hydra entry point of ``genlab demo``."""
    run_task(demo, cfg)


def rewrite_args(args: list[str]) -> list[str]:
    """No rewriting: demo takes only its own options."""
    return args
