"""examples/quickstart.ipynb runs from top to bottom on a tiny trained run (executed with nbclient)."""

from __future__ import annotations

import os

import nbformat
import pytest
from conftest import REPO_ROOT, TINY_DDPM
from eval_fixtures import make_run, once
from nbclient import NotebookClient


@once
def _tiny_cddpm(factory: pytest.TempPathFactory):
    root = factory.mktemp("notebook")
    return make_run(root / "cddpm", ["model=cddpm", *TINY_DDPM, "schedule.timesteps=20", "logger=none"], root / "cache")


@pytest.mark.slow
def test_quickstart_notebook_runs_and_shows_its_figures(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENLAB_RUN", str(_tiny_cddpm(tmp_path_factory)))
    notebook = nbformat.read(REPO_ROOT / "examples" / "quickstart.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO_ROOT)}}
    ).execute(env={**os.environ})
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "can: generate, generate_conditionally" in text and "sampler:" in text
    assert "torch.Size([16, 1, 16, 16])" in text
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(figures) == 2
