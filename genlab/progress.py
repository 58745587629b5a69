"""Progress bars for long generation, opened by the commands and fed from wherever the work happens.

A command opens :func:`progress` (a tqdm bar with an estimate of the time left); the code doing the
work reports with :func:`advance` — a no-op when no bar is open, so models and samplers report
progress without writing any output themselves. :func:`part` marks a unit of work (a batch of
images): reports inside it move the bar smoothly (a diffusion model advances by b/NFE per network
evaluation), and whatever they did not cover is added when the part ends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from tqdm.auto import tqdm


@dataclass
class _Bar:
    bar: tqdm
    done: float = 0.0


_ACTIVE: ContextVar[_Bar | None] = ContextVar("genlab_progress", default=None)


@contextmanager
def progress(total: float, desc: str, unit: str = "img", disable: bool | None = None) -> Iterator[None]:
    """Show a bar of ``total`` units while the block runs, on stderr, once it has taken 2 seconds.

    ``disable=None`` (default) hides it when stderr is not a terminal (logs, CI); ``False`` always shows it.
    """
    bar = tqdm(
        total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, disable=disable, dynamic_ncols=True, delay=2
    )
    token = _ACTIVE.set(_Bar(bar))
    try:
        yield
    finally:
        _ACTIVE.reset(token)
        bar.close()


def advance(amount: float) -> None:
    """Move the open bar by ``amount`` units (nothing when no bar is open)."""
    state = _ACTIVE.get()
    if state is not None:
        state.done += amount
        state.bar.update(amount)


@contextmanager
def part(amount: float) -> Iterator[None]:
    """A unit of ``amount``: :func:`advance` calls inside it count towards it; the rest is added at its end."""
    state = _ACTIVE.get()
    start = state.done if state is not None else 0.0
    yield
    if state is not None:
        advance(max(0.0, start + amount - state.done))
