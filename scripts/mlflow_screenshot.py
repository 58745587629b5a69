"""Check that ``mlflow ui`` shows a genlab run: list it with MLflow's client, serve the UI, screenshot its pages.

    python -m scripts.mlflow_screenshot OUTPUT_ROOT docs/img/mlflow [--port 5055]

Reads the local store ``OUTPUT_ROOT/mlflow.db`` (what ``logger=mlflow`` writes), prints the newest run's
metrics and image artifacts as MLflow's Python client lists them, starts ``mlflow ui`` on the loopback
address, and saves ``<prefix>_run.png`` (the run's page, once its metrics are shown) and
``<prefix>_images.png`` (its last logged sample grid in the Artifacts tab, once the image has loaded) with
headless Chromium.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from scripts.headless_chromium import Chromium

# The artifact viewer shows a logged PNG from a blob: URL once it has fetched it.
IMAGE_SHOWN = "[...document.querySelectorAll('img')].some(i => i.src.startsWith('blob:') && i.naturalWidth > 0)"


def newest_run(store: Path) -> tuple[str, str, str]:
    """(experiment id, run id, its last image artifact) of the newest run in the store; prints what MLflow's
    client lists for it."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store.resolve()}")
    experiment = client.get_experiment_by_name("genlab")
    [run] = client.search_runs([experiment.experiment_id], order_by=["start_time DESC"], max_results=1)
    print(f"run {run.info.run_name} ({run.info.run_id}), status {run.info.status}")
    print("metrics:", ", ".join(f"{k}={v:.4g}" for k, v in sorted(run.data.metrics.items())))
    images = [a.path for a in client.list_artifacts(run.info.run_id, "images") if a.path.endswith(".png")]
    print(f"{len(images)} image artifacts, e.g. {images[:2]}")
    last = max(images, key=lambda path: int(path.split("+step+")[1].split("+")[0]))  # the last epoch's grid
    return experiment.experiment_id, run.info.run_id, last


def serve_ui(store: Path, port: int, timeout: float) -> subprocess.Popen:
    """``mlflow ui`` on 127.0.0.1:``port`` for the store, once it answers /health."""
    env = {**os.environ, "DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{store.resolve()}"]
    server = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).close()
            return server
        except OSError:
            time.sleep(1)
    server.terminate()
    raise SystemExit(f"mlflow ui did not answer on port {port} within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_root", type=Path, help="paths.output_root of the runs (holds mlflow.db)")
    parser.add_argument("prefix", type=Path, help="screenshots: <prefix>_run.png, <prefix>_images.png")
    parser.add_argument("--port", type=int, default=5055)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    experiment, run, image = newest_run(args.output_root / "mlflow.db")
    server = serve_ui(args.output_root / "mlflow.db", args.port, args.timeout)
    page = f"http://127.0.0.1:{args.port}/#/experiments/{experiment}/runs/{run}"
    profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
    browser = Chromium(profile.name, 1300, 1000)
    try:
        browser.send("Page.navigate", {"url": page})
        browser.wait_for("document.body.innerText.includes('train/loss_d')", args.timeout)
        time.sleep(2)
        print(browser.save_screenshot(Path(f"{args.prefix}_run.png")))
        browser.send("Page.navigate", {"url": f"{page}/artifacts/{image}"})
        browser.wait_for(IMAGE_SHOWN, args.timeout)
        time.sleep(2)
        print(browser.save_screenshot(Path(f"{args.prefix}_images.png")))
    finally:
        browser.close()
        profile.cleanup()
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
