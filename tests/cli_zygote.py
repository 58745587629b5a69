"""Run ``python -m genlab ARGS`` as a fork of a process that has already imported torch, Lightning and genlab.

A CLI call in a fresh interpreter spends ~5–8 s importing torch and Lightning before genlab parses its
arguments; the test suite makes hundreds of them. A zygote imports them once, then forks one child per
call: the child takes the call's working directory, environment, argv and stdin/stdout/stderr, runs
``genlab`` as ``python -m genlab`` does (:func:`runpy.run_module`) and exits with its exit code, so each
call is still its own process (its own exit code, signals, global state), minus the imports.
Set ``GENLAB_TEST_NO_ZYGOTE=1`` to run every call in a fresh interpreter instead.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# The zygote's program: preload, then serve one call at a time (a JSON line in, JSON lines out).
ZYGOTE = r"""
import json, os, runpy, sys, traceback
import torch, pytorch_lightning, hydra  # noqa: F401  the slow imports, paid once
import genlab.build, genlab.tasks.common  # noqa: F401
requests, replies = sys.stdin, os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
for line in requests:
    call = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(call["cwd"])
            os.environ.clear()
            os.environ.update(call["env"])
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(os.open(call["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
            os.dup2(os.open(call["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
            sys.stdin = open(0, closefd=False)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            extra = [p for p in call["env"].get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
            sys.path[:0] = extra  # as the interpreter would have put them
            sys.argv = [os.path.join(os.path.dirname(genlab.build.__file__), "__main__.py"), *call["args"]]
            try:
                runpy.run_module("genlab", run_name="__main__", alter_sys=True)
                code = 0
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
                if not isinstance(stop.code, int | None):
                    print(stop.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
                code = 1
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    replies.write(json.dumps({"pid": pid}) + "\n")
    replies.flush()
    _, status = os.waitpid(pid, 0)
    replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
    replies.flush()
"""


class Zygote:
    """One preloaded interpreter serving calls one at a time."""

    def __init__(self, repo_root: Path) -> None:
        path = os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        self.outputs = Path(tempfile.mkdtemp(prefix="genlab_cli_"))
        atexit.register(shutil.rmtree, self.outputs, True)

    def reply(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the CLI zygote died (exit code {self.process.poll()})")
        return json.loads(line)

    def run(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        stdout, stderr = self.outputs / "stdout", self.outputs / "stderr"
        call = {"args": list(args), "cwd": str(cwd), "env": env, "stdout": str(stdout), "stderr": str(stderr)}
        self.process.stdin.write(json.dumps(call) + "\n")
        self.process.stdin.flush()
        pid = self.reply()["pid"]
        expired = threading.Event()
        timer = threading.Timer(timeout, lambda: (expired.set(), os.kill(pid, signal.SIGKILL)))
        timer.start()
        try:
            returncode = self.reply()["returncode"]
        finally:
            timer.cancel()
        outputs = stdout.read_text(errors="replace"), stderr.read_text(errors="replace")
        if expired.is_set():
            raise subprocess.TimeoutExpired(["genlab", *args], timeout, *outputs)
        return subprocess.CompletedProcess(["genlab", *args], returncode, *outputs)


class ZygotePool:
    """Zygotes shared by the calls of one test process (a new one when all are busy: calls may be concurrent)."""

    def __init__(self, repo_root: Path) -> None:
        self.repo_root = repo_root
        self.free: list[Zygote] = []
        self.lock = threading.Lock()

    def run(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        with self.lock:
            zygote = self.free.pop() if self.free else Zygote(self.repo_root)
        try:
            result = zygote.run(args, cwd, env, timeout)
        except BaseException:
            zygote.process.kill()
            raise
        with self.lock:
            self.free.append(zygote)
        return result
