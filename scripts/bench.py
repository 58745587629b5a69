"""genlab benchmark: training overhead against a plain PyTorch loop, data path against torchvision,
DDPM vs DDIM sampling, GAN sampling and evaluation cost. Prints one table and writes bench.json.

    python scripts/bench.py --quick                       # < 5 min on 2 CPU cores
    python scripts/bench.py --out bench.json              # the full run (docs/bench.md)
    python scripts/bench.py --device cuda --precision bf16-mixed --channels-last --compile --on-device
    python scripts/bench.py --models dcgan ddpm --sections train

Training: genlab's LightningModule + Trainer (with the callbacks and logger a user gets from
``configs/train.yaml``) and a plain loop written here (same nets, built from the same config with
the same seed, same optimizers, batch size and in-memory batches) alternate in the same process:
K genlab steps, K plain steps, and so on. Each side's figure is the median images/s of its timed
windows after warm-up; windows never include genlab's end-of-epoch work (validation, grids,
checkpoints), which the plain loop does not do. Sampling and evaluation use untrained networks:
their cost does not depend on the weights.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import DictConfig, OmegaConf, open_dict  # noqa: E402
from pytorch_lightning import Callback  # noqa: E402

from genlab.tasks.common import (  # noqa: E402
    CONFIG_DIR,
    instantiate_callbacks,
    instantiate_datamodule,
    instantiate_loggers,
    instantiate_model,
    instantiate_trainer,
)

TRAIN_MODELS: dict[str, list[str]] = {
    "cnn": ["model=cnn"],
    "gan": ["model=gan"],
    "dcgan": ["model=dcgan"],
    "cgan": ["model=cgan"],
    "pix2pix": ["model=pix2pix", "data=edges2digits", "data.image_size=64"],
    "ddpm": ["model=ddpm"],
}
DATASETS = ("digits", "mnist", "cifar10")
SECTIONS = ("train", "data", "sample", "eval")
COLUMNS = ("section", "benchmark", "genlab", "baseline", "ratio", "goal", "unit", "peak_rss_mb", "cuda_max_mb")


@dataclass
class Settings:
    """How much to measure: ``--quick`` or the full run."""

    warmup: int  # training steps before timing (each side)
    window: int  # steps per timed window
    windows: int  # timed windows per side
    data_rounds: int  # timed epochs per data-path loader
    data_images: int  # training images in the mnist/cifar10 fixture files
    sample_n: int  # images per DDPM/DDIM sample
    sample_size: int  # image size of the sampling benchmark
    gan_n: int  # images per GAN sampling round
    eval_sizes: tuple[int, ...]


QUICK = Settings(
    warmup=2, window=2, windows=3, data_rounds=2, data_images=2000, sample_n=2, sample_size=16, gan_n=256,
    eval_sizes=(2000, 10000),
)  # fmt: skip
FULL = Settings(
    warmup=2, window=3, windows=5, data_rounds=3, data_images=3000, sample_n=4, sample_size=32, gan_n=1024,
    eval_sizes=(2000, 10000),
)  # fmt: skip


# ----------------------------------------------------------------------------------- utilities


def compose_train(overrides: list[str], run_dir: Path) -> DictConfig:
    """``configs/train.yaml`` with ``overrides``, writing into ``run_dir``."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.run_dir = str(run_dir)
        cfg.paths.output_root = str(run_dir.parent)
        cfg.paths.cache_dir = str(run_dir.parent / "cache")
    return cfg


def reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS counter of this process (Linux ≥ 4.0), when allowed."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last :func:`reset_peak_rss` (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict[str, Any]:
    info = {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    return info


def row(section: str, benchmark: str, genlab: float | None, baseline: float | None = None, **extra: Any) -> dict:
    ratio = genlab / baseline if genlab is not None and baseline else None
    out = {"section": section, "benchmark": benchmark, "genlab": genlab, "baseline": baseline, "ratio": ratio}
    out.update({k: extra.get(k) for k in COLUMNS if k not in out})
    out.update({k: v for k, v in extra.items() if k not in COLUMNS})
    return out


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(rows: list[dict]) -> str:
    """The rows as one markdown table."""
    header = "| " + " | ".join(COLUMNS) + " |"
    lines = [header, "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- training


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


class PlainLoop:
    """The hand-written training loop: in-memory batches sliced from the same training tensors,
    the same networks (an identically seeded copy of the model), the same optimizers."""

    def __init__(self, name: str, model: Any, dataset: Any, batch_size: int, device: torch.device, switches: dict):
        self.device = device
        self.dataset = dataset
        self.batch_size = batch_size
        self.channels_last = switches["channels_last"]
        dtype = torch.bfloat16 if "bf16" in switches["precision"] else torch.float16
        mixed = switches["precision"].endswith("-mixed")
        self.autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if mixed else nullcontext
        self.batches = self._batches()
        model = model.to(device).train()
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.step = getattr(self, f"_build_{'gan' if name in ('gan', 'dcgan', 'cgan') else name}")(model)
        if switches["compile"]:
            for child in model.children():
                if next(child.parameters(), None) is not None and hasattr(child, "compile"):
                    child.compile(backend=switches["compile_backend"])

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.dataset)
        while True:
            order = torch.randperm(n)
            for start in range(0, n - self.batch_size + 1, self.batch_size):
                a, b = self.dataset[order[start : start + self.batch_size]]
                yield self._to(a), self._to(b)

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def run(self, steps: int) -> float:
        """Seconds for ``steps`` training steps."""
        sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step(next(self.batches))
        sync(self.device)
        return time.perf_counter() - start

    def _build_cnn(self, model: Any) -> Callable:
        net, opt = model.net, model.optimizer_factory(params=model.net.parameters())

        def step(batch):
            x, y = batch
            with self.autocast():
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    def _build_gan(self, model: Any) -> Callable:
        from genlab.models.losses import BCELoss

        if not isinstance(model.loss, BCELoss) or model.n_critic != 1:
            raise SystemExit("bench: the plain GAN loop mirrors model/loss=bce with n_critic=1 only.")
        g, d, ema = model.generator, model.discriminator, model.generator_ema
        opt_g = model.optimizer_g_factory(params=g.parameters())
        opt_d = model.optimizer_d_factory(params=d.parameters())
        conditional, nz, decay = model.conditional, model.nz, model.ema_decay
        updates = [0]

        def step(batch):
            real, labels = batch
            labels = labels if conditional else None
            z = torch.randn(real.shape[0], nz, device=self.device)
            with self.autocast():
                fake = g(z, labels)
                loss_d = bce(d(real, labels), True) + bce(d(fake.detach(), labels), False)
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            with self.autocast():
                loss_g = bce(d(fake, labels), True)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if ema is not None:
                updates[0] += 1
                k = updates[0]
                with torch.no_grad():
                    torch._foreach_lerp_(
                        list(ema.parameters()), list(g.parameters()), 1 - min(decay, (1 + k) / (10 + k))
                    )
                    for e, b in zip(ema.buffers(), g.buffers(), strict=True):
                        e.copy_(b)

        return step

    def _build_pix2pix(self, model: Any) -> Callable:
        g, d, lam = model.generator, model.discriminator, model.lambda_l1
        opt_g = model.optimizer_g_factory(params=g.parameters())
        opt_d = model.optimizer_d_factory(params=d.parameters())

        def step(batch):
            a, b = batch
            with self.autocast():
                fake = g(a)
                d.requires_grad_(True)
                loss_d = 0.5 * (bce(d(torch.cat([a, b], 1)), True) + bce(d(torch.cat([a, fake.detach()], 1)), False))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            d.requires_grad_(False)
            with self.autocast():
                loss_g = bce(d(torch.cat([a, fake], 1)), True) + lam * F.l1_loss(fake, b)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

        return step

    def _build_ddpm(self, model: Any) -> Callable:
        net, ema, decay = model.net, model.ema_net, model.ema_decay
        opt = model.optimizer_factory(params=net.parameters())
        sched = model.schedule
        a, s = sched.sqrt_alphas_cumprod, sched.sqrt_one_minus_alphas_cumprod
        T = sched.timesteps
        updates = [0]

        def step(batch):
            x0, _ = batch
            t = torch.randint(0, T, (x0.shape[0],), device=self.device)
            noise = torch.randn_like(x0)
            xt = a[t].view(-1, 1, 1, 1) * x0 + s[t].view(-1, 1, 1, 1) * noise
            with self.autocast():
                loss = F.mse_loss(net(xt, t, None), noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            updates[0] += 1
            k = updates[0]
            with torch.no_grad():
                torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1 - min(decay, (1 + k) / (10 + k)))

        return step


class WindowsDone(Exception):
    """Raised by :class:`Alternate` to leave ``trainer.fit`` at once (no end-of-epoch work after the last window)."""


class Alternate(Callback):
    """Inside genlab's fit: after warm-up, time ``window`` genlab steps, then run ``window`` plain
    steps, and so on, until both have ``windows`` timed windows; then leave the fit.

    A genlab window is measured from one ``on_train_batch_end`` to the ``window``-th next one, so it
    holds whole iterations of Lightning's loop (data fetch, hooks, logging, progress bar); a window
    is dropped when an epoch ends inside it (validation, grids and checkpoints are per-epoch work).
    """

    def __init__(self, plain: PlainLoop, settings: Settings, device: torch.device) -> None:
        self.plain, self.s, self.device = plain, settings, device
        self.steps = 0
        self.start: float | None = None
        self.count = 0
        self.genlab: list[float] = []
        self.baseline: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.start = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        sync(self.device)
        now = time.perf_counter()
        self.steps += 1
        if self.steps < self.s.warmup:
            return
        if self.steps == self.s.warmup:
            self.plain.run(self.s.warmup)
        if self.start is None:
            self.start, self.count = time.perf_counter(), 0
            return
        self.count += 1
        if self.count < self.s.window:
            return
        self.genlab.append(now - self.start)
        self.baseline.append(self.plain.run(self.s.window))
        if len(self.genlab) >= self.s.windows:
            raise WindowsDone
        self.start, self.count = time.perf_counter(), 0


def switch_overrides(switches: dict, device: torch.device) -> list[str]:
    out = [
        f"trainer.accelerator={'gpu' if device.type == 'cuda' else 'cpu'}",
        f"trainer.precision={switches['precision']}",
    ]
    for key in ("channels_last", "compile"):
        out.append(f"model.{key}={str(switches[key]).lower()}")
    out.append(f"model.compile_backend={switches['compile_backend']}")
    out.append(f"data.on_device={str(switches['on_device']).lower()}")
    out.append(f"augment.on_device={str(switches['on_device']).lower()}")
    return out


def bench_training(
    name: str, settings: Settings, device: torch.device, switches: dict, tmp: Path, extra: list[str]
) -> dict:
    """One model: genlab (real Trainer, configured callbacks and logger) vs the plain loop."""
    from genlab.metrics.training import fid_callbacks

    overrides = [*TRAIN_MODELS[name], *switch_overrides(switches, device), "trainer.max_epochs=100000", *extra]
    if name == "gan" and switches["channels_last"]:
        overrides.append("model.channels_last=false")  # MLPs: the switch refuses nets without convolutions
    cfg = compose_train(overrides, tmp / f"train_{name}")
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(cfg.seed)
    datamodule = instantiate_datamodule(cfg)
    model = instantiate_model(cfg)
    plain_cfg = copy.deepcopy(cfg)
    with open_dict(plain_cfg):
        plain_cfg.model.channels_last = plain_cfg.model.compile = False
    torch.manual_seed(cfg.seed)
    plain_model = instantiate_model(plain_cfg)  # the same weights (same seed), switches applied by PlainLoop
    datamodule.setup("fit")
    plain_switches = dict(switches, channels_last=switches["channels_last"] and name != "gan")
    plain = PlainLoop(name, plain_model, datamodule.dataset("train"), datamodule.batch_size, device, plain_switches)
    timer = Alternate(plain, settings, device)
    callbacks = [*instantiate_callbacks(cfg), *fid_callbacks(cfg, model, datamodule), timer]
    trainer = instantiate_trainer(cfg, callbacks, instantiate_loggers(cfg))
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    with suppress(WindowsDone):
        trainer.fit(model, datamodule=datamodule)
    batch = datamodule.batch_size
    genlab = statistics.median(settings.window * batch / t for t in timer.genlab)
    baseline = statistics.median(settings.window * batch / t for t in timer.baseline)
    size = cfg.data.image_size
    return row(
        "train",
        f"{name} {cfg.data.name} {size}px bs{batch}",
        genlab,
        baseline,
        goal="≥ 0.97",
        unit="img/s",
        peak_rss_mb=peak_rss_mb(),
        cuda_max_mb=torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        genlab_windows_s=timer.genlab,
        plain_windows_s=timer.baseline,
        images_per_window=settings.window * batch,
    )


# ----------------------------------------------------------------------------------- data path


def write_fixture_data(root: Path, n_train: int) -> None:
    """MNIST IDX and CIFAR-10 pickled batches of ``n_train`` training images, via tests/fixture_data.py."""
    from fixture_data import write_cifar10, write_mnist

    write_mnist(root, "MNIST", n_train=n_train, n_test=max(20, n_train // 6))
    write_cifar10(root, per_batch=max(12, n_train // 5))


def torchvision_dataset(name: str, root: Path, datamodule: Any, transform: Any) -> Any:
    """The same training images through torchvision's dataset classes (PIL images per sample)."""
    import torchvision
    from PIL import Image

    if name == "mnist":
        return torchvision.datasets.MNIST(str(root), train=True, transform=transform, download=False)
    if name == "cifar10":

        class FixtureCIFAR10(torchvision.datasets.CIFAR10):
            def _check_integrity(self) -> bool:  # the fixture files do not have the official checksums
                return True

            def _load_meta(self) -> None:  # the fixture has no batches.meta file
                self.classes = [str(k) for k in range(10)]
                self.class_to_idx = {c: k for k, c in enumerate(self.classes)}

        return FixtureCIFAR10(str(root), train=True, transform=transform, download=False)

    images = datamodule.dataset("train").images  # digits: no torchvision class; the same uint8 images as PIL

    class PILDigits(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int):
            return transform(Image.fromarray(images[i, 0].numpy(), mode="L")), 0

    return PILDigits()


def torchvision_pipeline(cfg: DictConfig) -> Any:
    """The tutorial pipeline equivalent of ``augment=basic``: v2 transforms on PIL images, then tensor + normalize."""
    from torchvision.transforms import v2

    c, size = cfg.data.channels, cfg.data.image_size
    steps = [
        v2.Resize(size),
        v2.RandomHorizontalFlip(cfg.data.hflip_p),
        v2.RandomCrop(size, padding=4),
        v2.ColorJitter(0.2, 0.2, 0.2),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.GaussianNoise(0.0, 0.03),
        v2.Normalize([0.5] * c, [0.5] * c),
    ]
    return v2.Compose(steps)


def images_per_s(batches: Callable[[], Iterator], rounds: int, device: torch.device, step=None) -> float:
    """Median images/s over ``rounds`` full passes (after one warm-up pass)."""
    rates = []
    for r in range(rounds + 1):
        sync(device)
        start, n = time.perf_counter(), 0
        for batch in batches():
            if step is not None:
                batch = step(batch)
            n += len(batch[0])
        sync(device)
        if r:
            rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_data(name: str, settings: Settings, device: torch.device, root: Path, tmp: Path) -> list[dict]:
    """genlab's datamodule (per-sample and on-device augmentation) vs torchvision's PIL pipeline."""
    from torch.utils.data import DataLoader

    common = [f"data={name}", "augment=basic", f"paths.data_dir={root}"]
    if name != "digits":
        common += ["data.download=false", f"data.val_size={max(1, settings.data_images // 10)}"]
    rows = []
    cfg = compose_train(common, tmp / f"data_{name}")
    dm = instantiate_datamodule(cfg)
    dm.setup("fit")
    genlab = images_per_s(dm.train_dataloader, settings.data_rounds, device, lambda b: (b[0].to(device), b[1]))
    dataset = torchvision_dataset(name, root, dm, torchvision_pipeline(cfg))
    loader = DataLoader(
        dataset,
        batch_size=dm.batch_size,
        shuffle=True,
        drop_last=len(dataset) > dm.batch_size,  # as genlab's train_dataloader
        num_workers=dm.num_workers,
    )
    baseline = images_per_s(lambda: iter(loader), settings.data_rounds, device, lambda b: (b[0].to(device), b[1]))
    label = f"{name} {cfg.data.image_size}px augment=basic bs{dm.batch_size} workers={dm.num_workers}"
    rows.append(row("data", f"{label}: per-sample", genlab, baseline, goal="≥ 3", unit="img/s"))

    for data_on_device in (False, True) if device.type == "cuda" else (False,):
        flags = ["augment.on_device=true", f"data.on_device={str(data_on_device).lower()}"]
        cfg = compose_train([*common, *flags], tmp / f"data_{name}_dev")
        dm = instantiate_datamodule(cfg)
        dm.setup("fit")

        def on_device(batch, dm=dm):
            if isinstance(batch, torch.Tensor):  # data.on_device: an index batch, gathered on the device
                return dm.augmentation.apply_batch(*dm.resident_train(device)[batch.to(device)])
            return dm.augmentation.apply_batch(batch[0].to(device), batch[1].to(device))

        rate = images_per_s(dm.train_dataloader, settings.data_rounds, device, on_device)
        what = "augment.on_device" + (" + data.on_device" if data_on_device else "")
        rows.append(row("data", f"{label}: {what} ({device.type})", rate, baseline, goal="≥ 3", unit="img/s"))
    return rows


# ----------------------------------------------------------------------------------- sampling, eval


def bench_sampling(settings: Settings, device: torch.device, tmp: Path) -> list[dict]:
    """DDPM-1000 vs DDIM-50 on one (untrained) diffusion model; GAN sampling images/s."""
    rows = []
    cfg = compose_train(["model=ddpm", f"data.image_size={settings.sample_size}"], tmp / "sample_ddpm")
    torch.manual_seed(0)
    model = instantiate_model(cfg).to(device).eval()
    n = settings.sample_n
    model.generate(n, sampler="ddim", steps=2)  # warm-up
    rates = {}
    for sampler, steps in (("ddpm", None), ("ddim", 50)):
        sync(device)
        start = time.perf_counter()
        model.generate(n, generator=torch.Generator(device).manual_seed(0), sampler=sampler, steps=steps)
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
    from hydra.utils import instantiate

    from genlab.metrics import scores
    from genlab.metrics.features import ClassifierFeatures
    from genlab.metrics.real_stats import extract, real_batches

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


# ----------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer windows and images (< 5 min on 2 CPU cores)")
    parser.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON file of the results")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--models", nargs="+", choices=list(TRAIN_MODELS), default=list(TRAIN_MODELS))
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--precision", default="32-true", help="trainer.precision, e.g. bf16-mixed")
    parser.add_argument("--channels-last", action="store_true", help="model.channels_last=true")
    parser.add_argument("--compile", action="store_true", help="model.compile=true (torch.compile)")
    parser.add_argument("--compile-backend", default="inductor", help="model.compile_backend")
    parser.add_argument("--on-device", action="store_true", help="data.on_device=true augment.on_device=true")
    parser.add_argument("--warmup", type=int, default=None, help="training warm-up steps (overrides the preset)")
    parser.add_argument("--window", type=int, default=None, help="steps per timed training window")
    parser.add_argument("--windows", type=int, default=None, help="timed windows per side")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the training benchmarks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench: --device cuda, but torch sees no CUDA GPU.")
    device = torch.device(args.device)
    settings = copy.copy(QUICK if args.quick else FULL)
    for key in ("warmup", "window", "windows"):
        if getattr(args, key) is not None:
            setattr(settings, key, getattr(args, key))
    switches = {
        "precision": args.precision,
        "channels_last": args.channels_last,
        "compile": args.compile,
        "compile_backend": args.compile_backend,
        "on_device": args.on_device,
    }
    import logging
    import warnings

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("genlab").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    info = machine_info(device)
    print(
        f"genlab bench on {info['device_name']} ({info['device']}); CPU {info['cpu']}, {info['cpu_cores']} cores, "
        f"{info['torch_threads']} torch threads; torch {info['torch']}; switches {switches}; "
        f"{'quick' if args.quick else 'full'}; load average {info['load_average']}",
        flush=True,
    )
    started, cpu_started = time.perf_counter(), time.process_time()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "train" in args.sections:
            for name in args.models:
                rows.append(bench_training(name, settings, device, switches, tmp, args.overrides))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
        if "data" in args.sections:
            root = tmp / "data"
            write_fixture_data(root, settings.data_images)
            for name in args.datasets:
                rows.extend(bench_data(name, settings, device, root, tmp))
        if "sample" in args.sections:
            rows.extend(bench_sampling(settings, device, tmp))
        if "eval" in args.sections:
            rows.extend(bench_eval(settings, device, tmp))
    info["seconds"] = time.perf_counter() - started
    info["cpu_seconds"] = time.process_time() - cpu_started  # does not grow when other programs share the cores
    info["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    result = {"machine": info, "switches": switches, "quick": args.quick, "settings": vars(settings), "rows": rows}
    print()
    print(table(rows))
    print(
        f"\n{info['seconds']:.0f} s wall, {info['cpu_seconds']:.0f} s CPU; load average at the end "
        f"{info['load_average_end']}; written {args.out}"
    )
    args.out.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
