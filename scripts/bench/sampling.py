"""Sampling and scoring cost: DDIM-50 against DDPM-1000 on one diffusion model, GAN sampling, and the
time to score N samples with classifier features."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from hydra.utils import instantiate

from genlab.build import instantiate_datamodule, instantiate_model
from genlab.metrics import scores
from genlab.metrics.features import ClassifierFeatures
from genlab.metrics.real_stats import extract, real_batches
from scripts.bench.common import Settings, compose_train, row, sync


def bench_sampling(settings: Settings, device: torch.device, tmp: Path) -> list[dict]:
    """DDPM-1000 vs DDIM-50 on one (untrained) diffusion model; GAN sampling images/s."""
    rows = []
    cfg = compose_train(["model=ddpm", f"data.image_size={settings.sample_size}"], tmp / "sample_ddpm")
    torch.manual_seed(0)
    model = instantiate_model(cfg).to(device).eval()
    n = settings.sample_n
    model.generate(n, sampler="ddim", steps=2)  # warm-up
    rates = {}
    for sampler, options in (("ddpm", {}), ("ddim", {"steps": 50})):
        sync(device)
        start = time.perf_counter()
        model.generate(n, generator=torch.Generator(device).manual_seed(0), sampler=sampler, **options)
        sync(device)
        rates[sampler] = n / (time.perf_counter() - start)
    T = model.schedule.timesteps
    rows.append(
        row(
            "sample",
            f"ddim-50 vs ddpm-{T}, ddpm {settings.sample_size}px, batch {n} (untrained net)",
            rates["ddim"],
            rates["ddpm"],
            goal="≥ 15",
            unit="img/s",
        )
    )
    for name in ("gan", "dcgan"):
        cfg = compose_train([f"model={name}"], tmp / f"sample_{name}")
        model = instantiate_model(cfg).to(device).eval()
        model.generate(64)
        sync(device)
        start = time.perf_counter()
        done = 0
        while done < settings.gan_n:
            model.generate(256)
            done += 256
        sync(device)
        size = cfg.data.image_size
        rows.append(
            row("sample", f"{name} {size}px, batches of 256", done / (time.perf_counter() - start), unit="img/s")
        )
    return rows


def bench_eval(settings: Settings, device: torch.device, tmp: Path) -> list[dict]:
    """Seconds to score N samples with classifier features: features, FID, KID, precision/recall, class histogram."""
    cfg = compose_train(["model=cnn"], tmp / "eval")
    torch.manual_seed(0)
    net = instantiate(cfg.model.net).to(device)
    features = ClassifierFeatures(net, "classifier:untrained", {})
    dm = instantiate_datamodule(cfg, train=False)
    dm.setup()
    real = extract(features, real_batches(dm, "test", len(dm.dataset("test"))), device).double().cpu()
    rows = []
    for n in settings.eval_sizes:
        fake_images = torch.rand(n, cfg.data.channels, cfg.data.image_size, cfg.data.image_size) * 2 - 1
        sync(device)
        start = time.perf_counter()
        feats, predicted = [], []
        for chunk in fake_images.split(int(cfg.eval.batch_size)):
            f, logits = features.features_and_logits(chunk.to(device))
            feats.append(f.double().cpu())
            predicted.append(logits.argmax(1).cpu())
        fake = torch.cat(feats)
        scores.fid(real, fake)
        scores.kid(real, fake, int(cfg.eval.kid_subsets), int(cfg.eval.kid_subset_size), 0)
        m = min(len(real), len(fake))
        scores.precision_recall(real[:m], fake[:m], int(cfg.eval.pr_k))
        scores.class_distribution(torch.cat(predicted), int(cfg.data.num_classes))
        seconds = time.perf_counter() - start
        rows.append(row("eval", f"score {n} samples, classifier features (digits 32px)", seconds, unit="s"))
    return rows
