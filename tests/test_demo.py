"""``genlab demo``: the Gradio page's API (through Gradio's Python client) returns the run's own samples, edits
and their grid shapes; a folder that is not a run and a port in use are refused."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import numpy as np
import pytest
import torch
from conftest import TINY_DDPM, run_cli
from eval_fixtures import eval_cache, make_run  # noqa: F401
from gradio_client import Client, handle_file
from PIL import Image
from refusals import assert_refused, tree

from genlab.api import Run
from genlab.imaging import save_grid
from genlab.tasks.demo import serve
from genlab.tasks.demo_page import ALL_CLASSES, build_page, picture

TINY_CGAN = ["model=cgan", "model.generator.ngf=8", "model.discriminator.ndf=8", "eval.n_at_end=0"]
TINY_CDDPM = ["model=cddpm", *TINY_DDPM, "eval.n_at_end=0"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, eval_cache):  # noqa: F811
    root = tmp_path_factory.mktemp("demo")
    return {
        name: make_run(root / name, overrides, eval_cache)
        for name, overrides in (("cgan", TINY_CGAN), ("cddpm", TINY_CDDPM))
    }


@pytest.fixture
def client(request, runs, monkeypatch):
    """A Gradio client of the demo page of ``runs[request.param]``, served on the loopback address."""
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    run = Run.load(runs[request.param], "last", "cpu")
    page = build_page(run, gr)
    url = serve(page, "127.0.0.1", free_port(), gr, block=False)
    assert url.startswith("http://127.0.0.1:")
    yield run, Client(url, verbose=False, download_files=True)
    page.close()


def shown(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("client", ["cgan"], indirect=True)
def test_generate_returns_the_runs_samples_for_a_seed(client):
    run, api = client
    grid = shown(api.predict(3, 20, ALL_CLASSES, 0, None, 20, 1, api_name="/generate"))
    assert grid.shape == (10 * 34 + 2, 2 * 34 + 2, 3)  # one row per class: 10 rows of 2 images of 32 px
    assert np.array_equal(grid, picture(run.sample(20, seed=3).images, 2))
    truncated = shown(api.predict(3, 4, "7", 0.5, None, 20, 1, api_name="/generate"))
    assert np.array_equal(truncated, picture(run.sample(4, seed=3, label=7, truncation=0.5).images, 2))


@pytest.mark.parametrize("client", ["cddpm"], indirect=True)
def test_diffusion_sampler_steps_guidance_and_sdedit_of_an_upload(client, tmp_path):
    run, api = client
    grid = shown(api.predict(1, 4, "5", 0, "ddim", 2, 2.0, api_name="/generate"))
    expected = run.sample(4, seed=1, label=5, sampler="ddim", steps=2, guidance=2.0).images
    assert grid.shape == (2 * 18 + 2, 2 * 18 + 2, 3) and np.array_equal(grid, picture(expected, 2))

    source = save_grid(run.split_images("train", 1)[0], tmp_path / "digit.png", 1)  # a 16-px image + padding
    edited = shown(api.predict(handle_file(str(source)), 0.5, 2, ALL_CLASSES, "ddim", 2, 1, api_name="/edit"))
    assert edited.shape == (18 + 2, 5 * 18 + 2, 3)  # the input beside 4 variations
    first = edited[2:18, 2:18, 0].astype(int)
    assert abs(first - np.asarray(Image.open(source).convert("L").resize((16, 16))).astype(int)).max() <= 40
    assert not np.array_equal(edited[2:18, 20:36], edited[2:18, 38:54])  # variations differ
    with pytest.raises(Exception, match="upload an image"):
        api.predict(None, 0.5, 2, ALL_CLASSES, "ddim", 2, 1, api_name="/edit")


def test_demo_refuses_a_folder_that_is_not_a_run_and_a_port_in_use(runs, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        before = tree([runs["cgan"]])
        calls = [["demo", f"run={plain}"], ["demo", f"run={runs['cgan']}", f"port={port}"]]
        with ThreadPoolExecutor(2) as pool:
            not_run, in_use = pool.map(lambda args: run_cli(args, tmp_path), calls)
    assert_refused(not_run, "is not a genlab run folder")
    assert_refused(in_use, f"port={port} on 127.0.0.1 is in use", before, [runs["cgan"]])
    assert not any(plain.iterdir())


def test_picture_is_the_grid_of_images_in_uint8():
    images = torch.tensor([-1.0, 1.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    grid = picture(images, 2)
    assert grid.shape == (6, 10, 3) and grid[2, 2].tolist() == [0, 0, 0] and grid[2, 6].tolist() == [255] * 3
