"""Check ``genlab demo`` in a real browser: serve a run's page, load it in headless Chromium, click Generate,
save a screenshot once the new grid is shown.

    python scripts/demo_screenshot.py RUN_DIR docs/img/demo.png [--port 7861]

Chromium (Debian's ``chromium`` package: ``apt-get install chromium``) runs headless with a fresh profile
and no background traffic, driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``:
NUL-separated JSON on file descriptors 3 and 4). Exits non-zero when the demo does not start, or the page
shows no generated grid in time.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
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
# The src of the shown grid (a file Gradio serves), once the image has loaded; "" before.
GRID_SRC = (
    "(() => { const i = [...document.querySelectorAll('img')].find(i => i.src.includes('/gradio_api/file=')); "
    "return i && i.complete && i.naturalWidth > 0 ? i.src : ''; })()"
)
# Type a seed into the first number box (as a person would: the input event), then press Generate.
SET_SEED = (
    "(() => {{ const box = document.querySelector('input[type=number]'); "
    "Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(box, '{seed}'); "
    "box.dispatchEvent(new Event('input', {{bubbles: true}})); box.dispatchEvent(new Event('blur')); }})()"
)
CLICK_GENERATE = "[...document.querySelectorAll('button')].find(b => b.textContent.trim() == 'Generate').click()"
REPO_ROOT = Path(__file__).resolve().parent.parent


def start_demo(run_dir: Path, port: int, timeout: float) -> tuple[subprocess.Popen, str]:
    """``python -m genlab demo`` in the background; its URL once it says it serves."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "genlab", "demo", f"run={run_dir}", f"port={port}"]
    demo = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + timeout
    assert demo.stdout is not None
    for line in demo.stdout:
        print(line, end="")
        if line.startswith("genlab demo: http"):
            return demo, line.split()[2]
        if time.monotonic() > deadline:
            break
    demo.kill()
    raise SystemExit(f"genlab demo did not start (exit status {demo.wait()})")


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


def screenshot(url: str, out: Path, width: int, height: int, timeout: float, seed: int) -> None:
    """Load the page, wait for its first grid (seed 0), type ``seed``, click Generate, wait for the new grid
    (Gradio names files by their content: a new grid is a new src), save a PNG of the page."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = Chromium(profile, width, height)
        try:
            browser.send("Page.navigate", {"url": url})
            first = browser.wait_for(GRID_SRC, timeout)
            browser.evaluate(SET_SEED.format(seed=seed))
            time.sleep(0.5)
            browser.evaluate(CLICK_GENERATE)
            browser.wait_for(GRID_SRC, timeout, unlike=first)
            time.sleep(1)  # let the progress overlay fade
            png = browser.send("Page.captureScreenshot", {"format": "png"})["data"]
        finally:
            browser.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(png))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a train run folder")
    parser.add_argument("out", type=Path, help="the screenshot (PNG)")
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument("--seed", type=int, default=7, help="the seed typed before pressing Generate")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for the demo and each grid")
    args = parser.parse_args()
    demo, url = start_demo(args.run, args.port, args.timeout)
    try:
        screenshot(url, args.out, args.width, args.height, args.timeout, args.seed)
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
    print(args.out)


if __name__ == "__main__":
    main()
