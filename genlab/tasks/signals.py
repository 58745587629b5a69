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
    """The SIGTERM and SIGINT handler of a train command; ``fitting`` is True while Lightning handles SIGTERM
    itself. ``received`` remembers the signal: a Lightning fit nested in scoring (the reference classifier's)
    turns the interrupt into ``sys.exit(1)``, and the caller still has to say what stopped it."""

    def __init__(self) -> None:
        self.fitting = False
        self.received: KeyboardInterrupt | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT:
            self.received = KeyboardInterrupt()
            raise self.received
        self.received = SigtermInterrupt()
        if not self.fitting:
            raise self.received

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
    """Install a :class:`SignalGuard` for SIGTERM and SIGINT (main thread only); restore the old handlers after."""
    guard = SignalGuard()
    try:
        previous = {signum: signal.signal(signum, guard) for signum in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread: leave signals alone
        yield guard
        return
    try:
        yield guard
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def signal_name(exception: BaseException) -> str:
    """How a stop was asked for, for metrics.json and messages."""
    return "SIGTERM" if isinstance(exception, SigtermInterrupt) else "Ctrl-C (SIGINT)"


def exit_code(exception: BaseException) -> int:
    """128 + the signal number, as shells report a process stopped by a signal."""
    return 128 + (signal.SIGTERM if isinstance(exception, SigtermInterrupt) else signal.SIGINT)
