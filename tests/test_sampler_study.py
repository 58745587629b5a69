"""``genlab eval experiment=sampler_study run=DIR``: every point an ordinary eval (same n, seed, features), the
FID-vs-NFE table and plot, and its bad input. One tiny v-prediction, min-SNR run (T = 10) serves every test."""

from __future__ import annotations

import csv
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import FAST, TINY_DDPM, run_cli
from eval_fixtures import TINY_CLASSIFIER, cli_env, make_run
from PIL import Image
from refusals import assert_refused, tree

from genlab.build import instantiate_model
from genlab.errors import GenlabError
from genlab.scoring.scorers import generation_options
from genlab.tasks.sampler_study import fastest_within
from genlab.tasks.train import train

STUDY = ["eval", "experiment=sampler_study", "n=40", "sampler_study.nfe=[3,6]", *TINY_CLASSIFIER]
# (sampler, steps, NFE) of every point: DDPM once with all T = 10 steps; Heun's budget 6 spends 2·3 − 1 = 5.
POINTS = [("ddpm", "all T", 10), ("ddim", 3, 3), ("ddim", 6, 6), ("dpm_solver", 3, 3), ("dpm_solver", 6, 6)]
POINTS += [("heun", 3, 3), ("heun", 6, 5)]
BAD = {
    "a budget below Heun's minimum": (["sampler_study.nfe=[2]"], "sampler_study: sampler=heun steps=2 cannot sample"),
    "a sampler given with the study": (["sampler=ddim"], "sampler=ddim: experiment=sampler_study chooses"),
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The tiny run, the study's and a plain eval's results, and the refused calls (two CLI calls at a time)."""
    root = tmp_path_factory.mktemp("study")
    cache = root / "cache"  # the 16 px reference classifier is trained there by the first eval
    overrides = ["model=ddpm", *TINY_DDPM, "callbacks.diffusion_viz=null", "model.prediction=v"]
    run = make_run(root / "run", [*overrides, "model.loss_weighting=min_snr"], cache)
    before = tree([run])
    calls = {name: [*STUDY, f"run={run}", *extra] for name, (extra, _) in BAD.items()}
    calls["plain eval"] = ["eval", f"run={run}", "n=40", "sampler=ddim", "steps=3", *TINY_CLASSIFIER]

    def call(name: str):
        cwd = root / name.replace(" ", "_")
        cwd.mkdir()
        return run_cli(calls[name], cwd, timeout=300, env=cli_env(cache))

    with ThreadPoolExecutor(2) as pool:
        refused = dict(zip(BAD, pool.map(call, BAD), strict=True))
    after_refused = tree([run])
    plain = call("plain eval")
    assert plain.returncode == 0, plain.stderr[-2000:]
    [plain_dir] = list((run / "eval").iterdir())
    result = run_cli([*STUDY, f"run={run}"], root, timeout=300, env=cli_env(cache))
    assert result.returncode == 0, result.stderr[-2000:]
    [study_dir] = [p for p in (run / "eval").iterdir() if p != plain_dir]
    return {"dir": study_dir, "plain": plain_dir, "refused": refused, "before": before, "after": after_refused}


def test_every_point_is_scored_into_the_table_with_its_nfe(study):
    rows = list(csv.DictReader((study["dir"] / "sampler_study.csv").open()))
    assert [(r["sampler"], r["steps"], int(r["nfe"])) for r in rows] == [(s, str(k), n) for s, k, n in POINTS]
    for row in rows:
        metrics = json.loads((study["dir"] / row["eval"]).read_text())
        drawn = (metrics["sampler"], metrics["nfe"], metrics["n"], metrics["seed"])
        assert drawn == (row["sampler"], int(row["nfe"]), 40, 0)
        assert float(row["fid"]) == metrics["fid"] and float(row["kid_mean"]) == metrics["kid_mean"]
        assert float(row["images_per_s"]) == round(40 / metrics["generation_seconds"], 2)
        assert float(row["images_per_cpu_s"]) == round(40 / metrics["generation_cpu_seconds"], 2)
        assert (study["dir"] / row["eval"]).parent.joinpath("grid.png").is_file()
    networks = {json.loads((study["dir"] / r["eval"]).read_text())["feature_network"] for r in rows}
    assert len(networks) == 1  # one feature network for every point


def test_a_point_is_the_same_as_a_plain_eval_with_that_sampler(study):
    point = json.loads((study["dir"] / "ddim_3" / "metrics.json").read_text())
    plain = json.loads((study["plain"] / "metrics.json").read_text())
    timing = ("eval_seconds", "generation_seconds", "generation_cpu_seconds")
    assert {k: v for k, v in point.items() if k not in timing} == {k: v for k, v in plain.items() if k not in timing}


def test_the_study_writes_its_markdown_and_plot(study):
    text = (study["dir"] / "sampler_study.md").read_text()
    assert "n = 40 samples per point, seed 0, classifier features" in text and "torch threads" in text
    assert "![FID against NFE](sampler_study.png)" in text and text.count("\n| ") == len(POINTS) + 1
    assert Image.open(study["dir"] / "sampler_study.png").size == (840, 540)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_study_input_is_refused_before_scoring(study, case):
    assert_refused(study["refused"][case], BAD[case][1])
    assert study["after"] == study["before"]


def test_the_fastest_sampler_within_ten_percent_of_ddim_50_is_named():
    rows = [
        {"sampler": "ddim", "steps": 50, "nfe": 50, "fid": 10.0},
        {"sampler": "ddim", "steps": 20, "nfe": 20, "fid": 11.5},
        {"sampler": "dpm_solver", "steps": 20, "nfe": 20, "fid": 10.5},
        {"sampler": "dpm_solver", "steps": 10, "nfe": 10, "fid": 11.2},
        {"sampler": "heun", "steps": 20, "nfe": 19, "fid": 10.9},
    ]
    assert "heun steps=20 (19 NFE, FID 10.9000)" in fastest_within(rows)
    assert fastest_within(rows[1:]) == ""  # no DDIM-50 reference


@pytest.mark.parametrize(("sampler", "steps"), [("ddim", 10), ("dpm_solver", 9), ("heun", 20)])
def test_a_default_budget_shrinks_to_what_a_short_schedule_allows(cfg_factory, sampler, steps):
    model = instantiate_model(cfg_factory("train", ["model=ddpm", *TINY_DDPM]))  # T = 10
    chosen = generation_options(model, {"sampler": sampler, "steps": 20}, {})
    assert chosen == {"sampler": sampler, "steps": steps}
    model.resolve_sampler(**chosen)  # fits
    assert generation_options(model, {"sampler": sampler, "steps": 20}, {"steps": 5})["steps"] == 5


def test_the_study_preset_is_refused_by_train(cfg_factory):
    with pytest.raises(GenlabError, match="experiment=sampler_study is a preset of genlab eval"):
        train(cfg_factory("train", ["experiment=sampler_study", "model=ddpm", *TINY_DDPM, *FAST]))
