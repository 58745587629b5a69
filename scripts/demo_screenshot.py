"""Check ``genlab demo`` in a real browser: serve a run's page, load it in headless Chromium, click Generate,
save a screenshot once the new grid is shown.

    python -m scripts.demo_screenshot RUN_DIR docs/img/demo.png [--port 7861]

Chromium runs headless with a fresh profile and no background traffic (:mod:`scripts.headless_chromium`).
Exits non-zero when the demo does not start, or the page shows no generated grid in time.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.headless_chromium import Chromium

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
            browser.save_screenshot(out)
        finally:
            browser.close()


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
