"""The ``README.md`` model card of a ``genlab export`` folder: model, data, training, metrics, samples, loading."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from genlab.api import Run
from genlab.capabilities import Denoises, Interpolates, Translates, generates_conditionally
from genlab.tables import markdown_table

# metrics.json entries that are bookkeeping, not figures.
SKIPPED = ("best_checkpoint", "status")


def training_record(run_dir: Path, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Steps and epochs of the checkpoint; wall time from the run's start (its saved config) to ``metrics.json``."""
    record: dict[str, Any] = {
        "checkpoint steps": checkpoint.get("global_step"),
        "epochs": checkpoint.get("epoch", 0) + 1,
    }
    metrics, started = run_dir / "metrics.json", run_dir / ".hydra" / "config.yaml"
    if metrics.is_file() and started.is_file():
        seconds = round(metrics.stat().st_mtime - started.stat().st_mtime)
        record["wall time (start to metrics.json)"] = str(timedelta(seconds=max(0, seconds)))
    return record


def metric_rows(path: Path) -> list[dict[str, Any]]:
    """One row per entry of a metrics.json (scores and the protocol they were made with)."""
    if not path.is_file():
        return []
    entries = json.loads(path.read_text())
    return [{"metric": key, "value": value} for key, value in entries.items() if key not in SKIPPED]


def plain_torch_usage(run: Run, network: DictConfig) -> str:
    """How to call the exported network without genlab's Run (what goes in, what comes out)."""
    model = run.model
    target = str(network["_target_"])
    module, name = target.rsplit(".", 1)
    lines = [
        "import torch, yaml",
        "from safetensors.torch import load_file",
        f"from {module} import {name}",
        "",
        'spec = yaml.safe_load(open("network.yaml"))',
        'spec.pop("_target_")',
        f"net = {name}(**spec)",
        'net.load_state_dict(load_file("model.safetensors"))',
        "net.eval()",
    ]
    if isinstance(model, Interpolates):
        latent = tuple(model.sample_latent(1).shape[1:])
        labels = f", torch.arange(16) % {model.num_classes}" if generates_conditionally(model) else ""
        prior = str(run.config.noise_dist.get("name", "gaussian"))
        lines += [
            f"z = torch.randn(16, {', '.join(map(str, latent))}, generator=torch.Generator().manual_seed(0))"
            + ("" if prior == "gaussian" else f"  # this run's prior is {prior}: draw z from it"),
            f"images = net(z{labels})  # (16, C, H, W) in [-1, 1]",
        ]
    elif isinstance(model, Translates):
        lines.append("outputs = net(inputs)  # inputs (N, C_in, S, S) in [-1, 1] → outputs in [-1, 1]")
    elif isinstance(model, Denoises):
        lines.append(
            "eps = net(x_t, t)  # predicted noise of x_t at timesteps t (add labels for a conditional model); "
            "sample with genlab's samplers (above) and the schedule in config.yaml"
        )
    return "\n".join(lines)


def write_card(
    out: Path, run: Run, network: DictConfig | None, training: dict[str, Any], grid_text: str, parameters: int
) -> Path:
    """Write ``out/README.md`` for the export of ``run``."""
    cfg = run.config
    half_life, decay = cfg.model.get("ema_half_life_images"), cfg.model.get("ema_decay")
    ema = f"half-life {half_life} images" if half_life else decay and f"decay {decay}"
    model_rows = [
        {"": "model", "value": f"{cfg.model.name} ({cfg.model._target_})"},
        {"": "sampling network", "value": f"{network['_target_'] if network else '?'}, {parameters:,} parameters"},
        {"": "weights", "value": f"EMA ({ema})" if ema else "as trained (no EMA)"},
        {
            "": "data",
            "value": f"{cfg.data.name}: {cfg.data.channels}×{cfg.data.image_size}² px, {cfg.data.num_classes} classes",
        },
        {"": "run", "value": f"{run.directory} ({run.checkpoint.name})"},
    ]
    sections = [
        f"# genlab {cfg.model.name} on {cfg.data.name}",
        "",
        markdown_table(model_rows),
        "",
        "## Training",
        "",
        markdown_table([{"": key, "value": value} for key, value in training.items()]),
        "",
        "## Metrics",
        "",
        "End-of-training scores and how they were made (FID/KID are only comparable under the same features, "
        "sample count, split and sampler):",
        "",
        markdown_table(metric_rows(run.directory / "metrics.json")) or "(none recorded)",
    ]
    evals = sorted((run.directory / "eval").glob("*/metrics.json"))
    if evals:
        sections += ["", f"Latest `genlab eval` ({evals[-1].parent.name}):", "", markdown_table(metric_rows(evals[-1]))]
    sections += ["", "## Samples", "", grid_text, "", "![samples](samples.png)", "", "## Loading", ""]
    sections += [
        "With genlab (`pip install genlab`): the model is rebuilt from `config.yaml` and the weights fill its "
        "sampling network.",
        "",
        "```python",
        "import genlab",
        "",
        'run = genlab.Run.from_export("PATH/TO/THIS/FOLDER")',
        "samples = run.sample(16, seed=0)  # Samples(images in [-1, 1], labels)"
        if not isinstance(run.model, Translates)
        else "outputs = run.translate(inputs)  # inputs in [-1, 1]",
        "```",
    ]
    if network is not None:
        sections += [
            "",
            "With plain torch and safetensors (the network's class comes from genlab; `network.yaml` holds its "
            "arguments):",
            "",
            "```python",
            plain_torch_usage(run, network),
            "```",
        ]
    path = out / "README.md"
    path.write_text("\n".join(sections) + "\n")
    return path
