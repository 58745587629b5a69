"""``genlab tune experiment=tune_dcgan``: Optuna trials are train runs, ranked by their FID in summary.md."""

from __future__ import annotations

import json
import shlex

import optuna
import pytest
import yaml
from conftest import FAST, compose_config, run_cli
from eval_fixtures import TINY_CLASSIFIER, cli_env, eval_cache  # noqa: F401
from omegaconf import OmegaConf

from genlab.errors import GenlabError
from genlab.tasks.tune import distribution, tune


def test_search_space_grammar_maps_to_optuna_distributions():
    d = optuna.distributions
    assert distribution(optuna, "a", "tag(log, interval(1e-4, 1e-2))") == d.FloatDistribution(1e-4, 1e-2, log=True)
    assert distribution(optuna, "a", "interval(0.0, 0.9)") == d.FloatDistribution(0.0, 0.9)
    assert distribution(optuna, "a", "interval(1, 8)") == d.FloatDistribution(1.0, 8.0)
    assert distribution(optuna, "a", "tag(int, log, interval(1, 8))") == d.IntDistribution(1, 8, log=True)
    assert distribution(optuna, "a", "choice(16, 32, 64)") == d.CategoricalDistribution([16, 32, 64])
    assert distribution(optuna, "a", "range(2, 10, 4)") == d.IntDistribution(2, 6, step=4)
    with pytest.raises(GenlabError, match="not a search space"):
        distribution(optuna, "a", "0.5")


def test_tune_without_a_search_preset_is_refused(tmp_path):
    with pytest.raises(GenlabError, match="experiment=tune_dcgan"):
        tune(compose_config("tune", [], tmp_path / "sweep"))


def test_tiny_study_ranks_its_trials_by_fid_and_prints_the_best_command(tmp_path, eval_cache):  # noqa: F811
    overrides = [*FAST, *TINY_CLASSIFIER, "eval.n_at_end=100", "data.batch_size=16", "threads=1"]
    result = run_cli(
        ["tune", "experiment=tune_dcgan", "tune.n_trials=3", *overrides], tmp_path, env=cli_env(eval_cache)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep] = (tmp_path / "outputs" / "tune").iterdir()
    trials = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit())
    assert [p.name.split("_")[0] for p in trials] == ["0", "1", "2"]
    fids = {p.name.split("_")[0]: json.loads((p / "metrics.json").read_text())["fid"] for p in trials}

    summary = (sweep / "summary.md").read_text()
    table = [line for line in summary.splitlines() if line.startswith("| ") and line[2].isdigit()]
    ranked = [line.split(" | ")[1] for line in table]  # the trial column, best first
    assert ranked == sorted(fids, key=fids.get) and len(ranked) == 3
    assert all(f"{fids[t]:.4f}" in line for t, line in zip(ranked, table, strict=True))

    best = trials[int(ranked[0])]
    command = next(line.strip() for line in summary.splitlines() if line.strip().startswith("python -m genlab train"))
    words = shlex.split(command)
    assert words[4:] == yaml.safe_load((best / ".hydra" / "overrides.yaml").read_text())
    assert "experiment=tune_dcgan" in words and "tune.n_trials=3" not in words
    chosen = dict(word.split("=", 1) for word in words if word.startswith("search."))
    saved = OmegaConf.load(best / ".hydra" / "config.yaml")
    assert saved.model.generator.ngf == int(chosen["search.ngf"]) and saved.model.optimizer_d.betas[0] == float(
        chosen["search.beta1"]
    )

    study = optuna.load_study(study_name=sweep.name, storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert sorted(t.value for t in study.trials) == sorted(fids.values())
    assert study.best_value == fids[ranked[0]]
