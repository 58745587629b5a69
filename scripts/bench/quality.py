"""Quality per budget: genlab's DCGAN and DDPM defaults against plain reference loops trained for the
same wall-clock budget in the same process, all scored by one FID (genlab's digits reference-classifier
features, the test split).

The references are built as the issue describes them: a pytorch/examples-style DCGAN (nz 100,
ngf = ndf = 64, BatchNorm, Adam 2e-4 β1 0.5, batch 64, BCE, N(0, 0.02) init — genlab's DCGAN nets are
exactly these, sampled from the live generator in eval mode) and a diffusers loop (``UNet2DModel`` with
block channels (32, 64, 64), attention in the lowest-resolution blocks, ``DDPMScheduler`` linear 1,000
steps, AdamW 1e-3, its own EMA 0.995, batch 64, sampled with ``DDIMScheduler`` 50 steps). All train on
genlab's digits training split at 32 px (the same images).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from genlab.api import Run
from genlab.build import instantiate_datamodule
from genlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init
from genlab.scoring.scorers import generative_scorer
from genlab.tasks.train import train_in_python
from scripts.bench.common import compose_train, row

BATCH = 64


class SampledBy(nn.Module):
    """A reference model posing as a genlab generator for the scorer (``generate`` only)."""

    def __init__(self, sample: Callable[[int, torch.Generator], Tensor], image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.sample_fn = sample
        self.image_shape = image_shape
        self.num_classes = 0
        self.anchor = nn.Parameter(torch.zeros(()))

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def generation_options(self) -> dict[str, str]:
        return {}

    @torch.no_grad()
    def generate(self, n: int, labels: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        return self.sample_fn(n, generator).clamp(-1, 1)


def batches(images: Tensor, seed: int):
    """Endless shuffled batches of the training images (in [-1, 1])."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(images), generator=gen)
        for start in range(0, len(images) - BATCH + 1, BATCH):
            yield images[order[start : start + BATCH]]


def reference_dcgan(images: Tensor, budget_s: float, seed: int) -> tuple[SampledBy, int]:
    """pytorch/examples DCGAN for ``budget_s`` seconds; returns the live generator (eval mode) and G steps."""
    torch.manual_seed(seed)
    g, d = DCGANGenerator(100, 64, 1, 32), DCGANDiscriminator(64, 1, 32)
    g.apply(dcgan_init), d.apply(dcgan_init)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    steps, start, data = 0, time.perf_counter(), batches(images, seed)
    while time.perf_counter() - start < budget_s:
        real = next(data)
        fake = g(torch.randn(BATCH, 100))
        out_real, out_fake = d(real), d(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
        loss_d = loss_d + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        out = d(fake)
        loss_g = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        steps += 1
    g.eval()
    return SampledBy(lambda n, gen: g(torch.randn(n, 100, generator=gen)), (1, 32, 32)), steps


def reference_diffusers(images: Tensor, budget_s: float, seed: int) -> tuple[SampledBy, int, int]:
    """The diffusers DDPM loop for ``budget_s`` seconds; returns its EMA net sampled with DDIM-50, steps, params."""
    torch.manual_seed(seed)
    net = UNet2DModel(
        sample_size=32,
        in_channels=1,
        out_channels=1,
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    )
    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(0.995))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    steps, start, data = 0, time.perf_counter(), batches(images, seed)
    while time.perf_counter() - start < budget_s:
        x0 = next(data)
        noise = torch.randn_like(x0)
        t = torch.randint(0, 1000, (BATCH,))
        loss = F.mse_loss(net(scheduler.add_noise(x0, noise, t), t).sample, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ema.update_parameters(net)
        steps += 1
    sampler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear")
    sampler.set_timesteps(50)
    averaged = ema.module.eval()

    def sample(n: int, gen: torch.Generator) -> Tensor:
        x = torch.randn(n, 1, 32, 32, generator=gen)
        for t in sampler.timesteps:
            x = sampler.step(averaged(x, t).sample, t, x).prev_sample
        return x

    return SampledBy(sample, (1, 32, 32)), steps, sum(p.numel() for p in net.parameters())


def genlab_budget_run(model: str, budget_s: float, seed: int, extra: list[str]) -> tuple[Run, float]:
    """genlab's default ``model`` trained for ``budget_s`` seconds (trainer.max_time); the run and its wall time."""
    clock = time.strftime("%H:%M:%S", time.gmtime(budget_s))
    overrides = [f"model={model}", f"seed={seed}", f"++trainer.max_time=00:{clock}", "trainer.max_epochs=-1"]
    started = time.perf_counter()
    run = train_in_python([*overrides, "eval.n_at_end=0", *extra])
    return run, time.perf_counter() - started


class QualityScorer:
    """One FID for every side: the digits test split at 32 px, reference-classifier features."""

    def __init__(self, tmp: Path) -> None:
        self.cfg = compose_train([f"paths.output_root={tmp}", "data.image_size=32"], tmp / "quality")
        self.datamodule = instantiate_datamodule(self.cfg, train=False)
        train = self.datamodule.dataset("train")
        self.images = train[list(range(len(train)))][0]

    def __call__(self, model: Any, n: int, options: dict | None = None) -> dict[str, Any]:
        """FID of ``n`` samples of ``model`` and how many of the 10 classes they cover."""
        scorer = generative_scorer(
            self.cfg.data, self.cfg.eval, split="test", features="classifier", metrics=["fid", "class_hist"], n=n,
            cache_dir=self.cfg.paths.cache_dir, device=torch.device("cpu"), datamodule=self.datamodule,
        )  # fmt: skip
        metrics, _ = scorer.score(model, seed=0, options=options or {})
        return {"fid": metrics["fid"], "classes": round(metrics["class_coverage"] * 10)}


# What each genlab side samples with, and how many samples its FID takes.
SIDES = {"dcgan": (1000, {}), "ddpm": (500, {"sampler": "dpm_solver", "steps": 20})}


def genlab_side(model: str, minutes: float, seed: int, tmp: Path, extra: list[str], score: QualityScorer) -> dict:
    """genlab's ``model`` with ``extra`` overrides trained for ``minutes``: FID of its sampling network (and of
    the live network where it has an EMA), steps trained, parameters and wall time."""
    run, wall = genlab_budget_run(model, minutes * 60, seed, [f"paths.output_root={tmp}", *extra])
    steps = int(torch.load(run.checkpoint, weights_only=True, map_location="cpu")["global_step"])
    n, options = SIDES[model]
    ours = score(run.model, n, options)
    live = score(run.model, n, {**options, "ema": False}) if "ema" in run.generation_options() else ours
    params = sum(p.numel() for p in run.model.sampling_network().parameters())
    return {
        "fid": ours["fid"], "classes": ours["classes"], "live_fid": live["fid"], "live_classes": live["classes"],
        "steps": steps, "params": params, "wall_s": wall,
    }  # fmt: skip


def bench_quality(minutes: dict[str, float], seed: int, tmp: Path, genlab_extra: dict[str, list[str]]) -> list[dict]:
    """The two side-by-side comparisons: DCGAN and DDPM, genlab vs its reference, same budget, same FID."""
    score = QualityScorer(tmp)
    ours = genlab_side("dcgan", minutes["dcgan"], seed, tmp, genlab_extra.get("dcgan", []), score)
    reference, ref_steps = reference_dcgan(score.images, minutes["dcgan"] * 60, seed)
    theirs = score(reference, SIDES["dcgan"][0])
    rows = [
        row("quality", f"dcgan {minutes['dcgan']:g} min: FID, genlab / pytorch-examples", ours["fid"], theirs["fid"],
            goal="≤ 0.7", unit="FID", genlab_steps=ours["steps"], reference_steps=ref_steps,
            genlab_classes=ours["classes"], reference_classes=theirs["classes"], genlab_live_fid=ours["live_fid"],
            genlab_wall_s=ours["wall_s"])
    ]  # fmt: skip
    ours = genlab_side("ddpm", minutes["ddpm"], seed, tmp, genlab_extra.get("ddpm", []), score)
    reference, ref_steps, ref_params = reference_diffusers(score.images, minutes["ddpm"] * 60, seed)
    theirs = score(reference, SIDES["ddpm"][0])
    rows.append(row("quality", f"ddpm {minutes['ddpm']:g} min: FID, genlab (DPM-Solver++ 20) / diffusers (DDIM-50)",
                    ours["fid"], theirs["fid"], goal="≤ 0.5, 10 classes", unit="FID", genlab_steps=ours["steps"],
                    reference_steps=ref_steps, genlab_classes=ours["classes"], reference_classes=theirs["classes"],
                    genlab_live_fid=ours["live_fid"], genlab_params=ours["params"], reference_params=ref_params,
                    genlab_wall_s=ours["wall_s"]))  # fmt: skip
    return rows
