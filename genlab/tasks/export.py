"""``genlab export run=DIR [ckpt=last|best]``: hand a trained model on.

Writes ``DIR/export/<date_time>/``: the sampling network's weights (the EMA copy where there is one) as
``model.safetensors``, the resolved run config (``config.yaml``, what :meth:`genlab.api.Run.from_export`
rebuilds the model from), the network's own arguments (``network.yaml``), a sample grid and a
``README.md`` model card. A failed export leaves nothing behind; the rest of ``DIR`` is never touched.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import hydra
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save_file
from torch import nn

from genlab.api import Run
from genlab.capabilities import Exports, Translates, generates_conditionally
from genlab.errors import GenlabError
from genlab.imaging import comparison_grid, default_nrow, groups_per_row, save_grid, save_picture
from genlab.io import safe_torch_load
from genlab.scoring.scorers import generation_options
from genlab.tasks.common import CONFIG_PATH, discard, run_task
from genlab.tasks.model_card import training_record, write_card

log = logging.getLogger("genlab")


def network_spec(model_cfg: DictConfig, net: nn.Module, num_classes: int) -> DictConfig | None:
    """The resolved config node that builds ``net`` (matched by its class), as plain constructor arguments.

    A ``_partial_`` node gets ``num_classes`` from the model where its class takes it (the diffusion UNet).
    """
    for value in model_cfg.values():
        if isinstance(value, DictConfig) and "_target_" in value and get_class(value._target_) is type(net):
            spec = {k: v for k, v in OmegaConf.to_container(value, resolve=True).items() if k != "_partial_"}
            if value.get("_partial_") and "num_classes" in inspect.signature(type(net)).parameters:
                spec.setdefault("num_classes", num_classes)
            return OmegaConf.create(spec)
    return None


def write_grid(run: Run, cfg: DictConfig, out: Path) -> str:
    """``samples.png`` (samples from noise, or translation triples of the test split); returns its caption."""
    if isinstance(run.model, Translates):
        inputs, targets = run.split_pairs("test", cfg.n)
        outputs = run.translate(inputs)
        save_picture(comparison_grid([inputs, outputs, targets], groups_per_row(len(inputs), 3)), out / "samples.png")
        return f"The first {len(inputs)} test pairs: input | output | target."
    options = generation_options(run.model, run.config.eval.get("sample_options") or {}, {})
    classes = int(run.model.num_classes) if generates_conditionally(run.model) else 0
    n = -(-cfg.n // classes) * classes if classes else cfg.n  # whole rows, one per class
    samples = run.sample(n, cfg.seed, **options)
    save_grid(samples.images, out / "samples.png", default_nrow(n, samples.labels, classes))
    rows = " (one row per class)" if classes else ""
    how = ", ".join(f"{k}={v}" for k, v in options.items()) or "the run's default sampling options"
    return f"{n} samples{rows}, seed {cfg.seed}, {how} (as the end-of-training scores)."


def export(cfg: DictConfig) -> Path:
    """Write the export folder of the run ``cfg.run`` (``cfg.paths.run_dir``)."""
    run = Run.load(cfg.run, cfg.ckpt, cfg.device)
    if not isinstance(run.model, Exports):
        raise GenlabError(
            f"model={run.name} has no single sampling network to export (generators and translators have one)."
        )
    out = Path(cfg.paths.run_dir)
    out.mkdir(parents=True, exist_ok=True)
    net = run.model.sampling_network()
    state = {key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}
    metadata: dict[str, Any] = {"format": "pt", "genlab_model": run.name, "genlab_data": str(run.config.data.name)}
    save_file(state, out / "model.safetensors", metadata=metadata)
    OmegaConf.save(OmegaConf.to_container(run.config, resolve=True), out / "config.yaml")
    network = network_spec(run.config.model, net, int(getattr(run.model, "num_classes", 0)))
    if network is not None:
        OmegaConf.save(network, out / "network.yaml")
    caption = write_grid(run, cfg, out)
    training = training_record(run.directory, safe_torch_load(run.checkpoint))
    parameters = sum(p.numel() for p in net.parameters())
    card = write_card(out, run, network, training, caption, parameters)
    for path in (out / "model.safetensors", out / "config.yaml", out / "samples.png", card):
        print(path)
    return out


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="export")
def main(cfg: DictConfig) -> None:
    """Hydra entry point of ``genlab export``."""
    out = Path(cfg.paths.run_dir)
    run_task(export, cfg, cleanup=lambda: discard(out))


def rewrite_args(args: list[str]) -> list[str]:
    """No rewriting: export takes only its own options."""
    return args
