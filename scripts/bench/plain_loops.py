"""The plain PyTorch training loops genlab is timed against: the same networks (an identically seeded
copy of the model's nets), optimizers and in-memory batches, written as a user of plain PyTorch would
(BCE-with-logits GAN steps as pytorch/examples, L_simple for DDPM, torch's AveragedModel for EMAs)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from genlab.models.losses import BCELoss
from scripts.bench.common import sync

GAN_MODELS = ("gan", "dcgan", "cgan")


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def ema_of(net: torch.nn.Module, decay: float | None) -> AveragedModel | None:
    return None if decay is None else AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


class PlainLoop:
    """A hand-written loop over the model's networks; :meth:`run` times ``steps`` training steps."""

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
        build = {"cnn": self._cnn, "pix2pix": self._pix2pix, "ddpm": self._ddpm}
        self.step = self._gan(model) if name in GAN_MODELS else build[name](model)
        if switches["compile"]:
            for child in model.children():
                if next(child.parameters(), None) is not None:
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

    def _cnn(self, model: Any) -> Callable:
        net, opt = model.net, model.optimizer_factory(params=model.net.parameters())

        def step(batch):
            x, y = batch
            with self.autocast():
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    def _gan(self, model: Any) -> Callable:
        if not isinstance(model.loss, BCELoss) or model.n_critic != 1:
            raise SystemExit("bench: the plain GAN loop mirrors model/loss=bce with n_critic=1 only.")
        g, d = model.generator, model.discriminator
        ema = ema_of(g, model.generator_ema.decay if model.generator_ema is not None else None)
        opt_g = model.optimizer_g_factory(params=g.parameters())
        opt_d = model.optimizer_d_factory(params=d.parameters())
        conditional, nz = model.num_classes > 0, model.latent_dim

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
                ema.update_parameters(g)

        return step

    def _pix2pix(self, model: Any) -> Callable:
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

    def _ddpm(self, model: Any) -> Callable:
        net = model.net
        ema = ema_of(net, model.ema_net.decay)
        opt = model.optimizer_factory(params=net.parameters())
        schedule = model.schedule
        a, s = schedule.sqrt_alphas_cumprod, schedule.sqrt_one_minus_alphas_cumprod
        T = schedule.timesteps

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
            ema.update_parameters(net)

        return step
