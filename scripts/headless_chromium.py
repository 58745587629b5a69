"""Headless Chromium driven through the DevTools protocol over a pipe, for screenshots of local pages.

Debian's ``chromium`` package (``apt-get install chromium``), started with a fresh profile, no background
traffic and ``--remote-debugging-pipe`` (NUL-separated JSON on its file descriptors 3 and 4), so no
websocket library is needed. Used by :mod:`scripts.demo_screenshot` and :mod:`scripts.mlflow_screenshot`.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


class Chromium:
    """Headless Chromium driven through the DevTools protocol over a pipe (one page)."""

    def __init__(self, profile: str, width: int, height: int) -> None:
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            raise SystemExit("chromium is not installed (Debian: apt-get install chromium)")
        to_browser, self._commands = os.pipe()
        self._replies, from_browser = os.pipe()

        def pipes_on_3_and_4() -> None:
            reading, writing = os.dup(to_browser), os.dup(from_browser)  # above 4: the dup2s cannot clobber them
            os.dup2(reading, 3)
            os.dup2(writing, 4)

        self.process = subprocess.Popen(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=pipes_on_3_and_4,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._id, self.session = b"", 0, None
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command (to the page once attached) and return its result."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if self.session is not None:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._replies, 1 << 16)
                if not chunk:
                    raise SystemExit("chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise SystemExit(f"chromium: {method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str) -> Any:
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def wait_for(self, expression: str, timeout: float, unlike: Any = None) -> Any:
        """Poll ``expression`` until it is truthy and differs from ``unlike``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value and value != unlike:
                return value
            time.sleep(0.5)
        raise SystemExit(f"timed out after {timeout:.0f} s waiting for: {expression}")

    def close(self) -> None:
        self.session = None
        self.send("Browser.close")
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def save_screenshot(self, out: Path) -> Path:
        """The page as it is now, as a PNG."""
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"]))
        return out
