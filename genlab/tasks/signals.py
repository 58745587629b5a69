"""Stopping a run by signal at any stage, with its status recorded.

Inside ``trainer.fit`` Lightning turns SIGTERM into a flag checked between training steps (and raises
``SIGTERMException``); outside it (scoring, pool building) SIGTERM would kill the process on the spot
and leave no ``metrics.json``. :class:`SignalGuard` makes SIGTERM outside fit raise
:class:`SigtermInterrupt`, a ``KeyboardInterrupt``, so the command stops at once the way Ctrl-C does
and records what it measured.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class SigtermInterrupt(KeyboardInterrupt):
    """SIGTERM received outside ``trainer.fit``."""


class SignalGuard:
    """The SIGTERM handler of a train command; ``fitting`` is True while Lightning handles SIGTERM itself."""

    def __init__(self) -> None:
        self.fitting = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if not self.fitting:
            raise SigtermInterrupt

    @contextmanager
    def during_fit(self) -> Iterator[None]:
        """Leave SIGTERM to Lightning (it stops between steps) while the block runs."""
        self.fitting = True
        try:
            yield
        finally:
            self.fitting = False


@contextmanager
def guard_sigterm() -> Iterator[SignalGuard]:
    """Install a :class:`SignalGuard` for SIGTERM (main thread only) and restore the old handler after."""
    guard = SignalGuard()
    try:
        previous = signal.signal(signal.SIGTERM, guard)
    except ValueError:  # not the main thread: leave signals alone
        yield guard
        return
    try:
        yield guard
    finally:
        signal.signal(signal.SIGTERM, previous)


def signal_name(exception: BaseException) -> str:
    """How a stop was asked for, for metrics.json and messages."""
    return "SIGTERM" if isinstance(exception, SigtermInterrupt) else "Ctrl-C (SIGINT)"


def exit_code(exception: BaseException) -> int:
    """128 + the signal number, as shells report a process stopped by a signal."""
    return 128 + (signal.SIGTERM if isinstance(exception, SigtermInterrupt) else signal.SIGINT)
