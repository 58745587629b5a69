"""Time pix2pix training steps (one D step + one G step) on random pairs.

    python scripts/pix2pix_step_time.py --size 256 --batch 1 --ngf 64 --steps 5 --device cpu

Prints the wall-clock and the process CPU time per step (the CPU time is what the step costs
when the machine is shared with other work).
"""

from __future__ import annotations

import argparse
import time

import torch

from genlab.models.losses import BCELoss
from genlab.nets.patchgan import PatchGANDiscriminator
from genlab.nets.unet import UNetGenerator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = UNetGenerator(args.channels, args.channels, args.size, ngf=args.ngf).to(device)
    d = PatchGANDiscriminator(args.channels, args.channels, ndf=args.ngf).to(device)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    loss = BCELoss()  # pix2pix's default cGAN loss (model.gan_mode=vanilla)

    def d_of(images: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return d(torch.cat([inputs, images], 1))

    a = torch.rand(args.batch, args.channels, args.size, args.size, device=device) * 2 - 1
    b = torch.rand_like(a) * 2 - 1

    def step() -> None:
        fake = g(a)
        d.requires_grad_(True)
        loss_d = 0.5 * loss.discriminator_loss(d_of, b, fake.detach(), a)[0]
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        d.requires_grad_(False)
        loss_g = loss.generator_loss(d_of, fake, a)[0] + 100 * (fake - b).abs().mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = (time.perf_counter() - wall) / args.steps, (time.process_time() - cpu) / args.steps
    print(
        f"size={args.size} batch={args.batch} ngf={args.ngf} device={device} threads={torch.get_num_threads()}: "
        f"{wall:.3f} s/step wall, {cpu:.3f} s/step CPU time"
    )


if __name__ == "__main__":
    main()
