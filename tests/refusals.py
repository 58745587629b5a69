"""The one check of every bad-input test: refused with one short message, no traceback, nothing changed.

``tree`` records every file (with its hash) and every folder under the given run folders, so a test
sees files that appear or disappear, not only files whose content changes.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

MAX_MESSAGE_LINES = 6


def tree(folders: Iterable[Path]) -> dict[str, str]:
    """Every file (sha256) and folder ("dir") under ``folders``."""
    out = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


def message_of(stderr: str) -> str:
    """The user-facing message: from genlab's ``error:`` line on (Hydra's own report otherwise)."""
    return stderr[stderr.index("genlab: error:") :] if "genlab: error:" in stderr else stderr


def assert_refused(
    result: subprocess.CompletedProcess,
    needle: str,
    unchanged: dict[str, str] | None = None,
    folders: Iterable[Path] = (),
    exit_code: int = 2,
) -> str:
    """``result`` failed with ``exit_code``, a short message holding ``needle`` and no traceback, and the
    ``folders`` hold exactly what ``unchanged`` (a :func:`tree` taken before) recorded. Returns the message."""
    stderr = result.stderr
    assert result.returncode == exit_code, (result.returncode, stderr[-2000:])
    assert "Traceback" not in stderr, stderr
    message = message_of(stderr)
    lines = [line for line in message.splitlines() if line.strip()]
    assert 1 <= len(lines) <= MAX_MESSAGE_LINES, message
    assert needle in message, message
    if unchanged is not None:
        assert tree(folders) == unchanged, "a refused command added, changed or removed files in a run folder"
    return message
