"""RePaint inpainting (Lugmayr et al. 2022) on a one-step sampler (DDPM or DDIM) of a trained model.

The reverse process runs on the whole image; after every reverse step the known region (mask 0) is
replaced by the original noised to that step's level, q(x_s | x_0) with fresh noise, so only the masked
region comes from the model (Algorithm 1 of the paper); after the last step the known region is the
original itself, exactly. To harmonise the two regions the chain jumps back in time now and then
("resampling") with the forward process and denoises that stretch again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import Tensor

from genlab.diffusion.samplers.base import (
    EpsFn,
    Sampler,
    StepSampler,
    batch_t,
    check_int,
    gaussian_noise,
    registered_samplers,
    sampler_class,
)
from genlab.diffusion.schedules import NoiseSchedule
from genlab.errors import GenlabError


def jump_schedule(times: Sequence[int], jump: int, resample: int) -> list[int]:
    """The timesteps visited by RePaint over a sampler's descending ``times`` (last 0), ending with −1.

    Number the K entries of ``times`` by level L = K − 1 (the first, noisiest) down to 0 (the last).
    Jump points are the levels 0, j, 2j, … below K − j, each with r − 1 jumps. Walking down one level per
    reverse step from K − 1, on arriving at a jump point that has jumps left, take one and go back up j
    levels (one forward jump); at the end step to −1, the final image. This is the paper's schedule
    (its code's ``get_schedule_jump``), with a jump of j levels taken at once instead of j one-step ones:
    the stretch from level L + j down to L above each jump point is walked r times, the stretch above the
    highest jump point + j and the last step (0 → −1) once. An increase in the list is a forward jump.
    """
    k = len(times)
    left = {level: resample - 1 for level in range(0, k - jump, jump)}
    level, levels = k - 1, [k - 1]
    while level > 0:
        level -= 1
        levels.append(level)
        if left.get(level, 0) > 0:
            left[level] -= 1
            level += jump
            levels.append(level)
    return [times[k - 1 - level] for level in levels] + [-1]


@dataclass(frozen=True)
class RePaint:
    """RePaint with ``resample`` = r and ``jump`` = j of the paper (Section 4.2, Fig. 9 and 10).

    r counts how many times a resampled stretch is denoised: r = 1 is no resampling (plain paste-back),
    r = 10 walks each of those stretches ten times (nine jumps back per jump point); see
    :func:`jump_schedule` for the exact rule. A jump back from timestep s to t > s draws
    x_t ~ q(x_t | x_s) = N(√(ᾱ_t/ᾱ_s) x_s, (1 − ᾱ_t/ᾱ_s) I), the forward process over those steps in one go.

    With DDPM the levels are the T timesteps. With DDIM they are the entries of its subsequence: j counts
    entries (a jump goes back j entries, not j timesteps) and the re-noising from entry s to entry t uses
    ᾱ_t/ᾱ_s as above. With η = 0 the DDIM steps themselves are deterministic; the fresh noise of the
    jumps and of the pasted known region is then what resampling mixes in.

    Network evaluations of one image (guidance doubles them), with K the sampler's steps from pure noise
    (T for DDPM, ``steps`` for DDIM): NFE = K + (r − 1) · j · ⌈(K − j)/j⌉, i.e. K when r = 1.
    """

    resample: int = 10
    jump: int = 10

    def __post_init__(self) -> None:
        check_int("resample", self.resample, 1)
        check_int("jump", self.jump, 1)

    def time_schedule(self, sampler: Sampler, timesteps: int) -> list[int]:
        """The timesteps visited with ``sampler`` on a schedule of ``timesteps`` steps (see :func:`jump_schedule`)."""
        step_sampler = _step_sampler(sampler)
        step_sampler.check(timesteps)
        times = step_sampler.timesteps(timesteps, timesteps - 1)
        if self.resample > 1 and self.jump >= len(times):
            raise GenlabError(
                f"jump={self.jump} must be smaller than the sampler's {len(times)} steps when resample="
                f"{self.resample} > 1: no stretch of {self.jump} steps fits, so nothing would be resampled. "
                f"Lower jump, or give the sampler more steps."
            )
        return jump_schedule(times, self.jump, self.resample)

    def nfe(self, sampler: Sampler, timesteps: int) -> int:
        """Network evaluations of one inpainted image (the reverse steps of :meth:`time_schedule`)."""
        visits = self.time_schedule(sampler, timesteps)
        return sum(s < t for t, s in pairwise(visits))

    @torch.no_grad()
    def inpaint(
        self,
        sampler: Sampler,
        eps_fn: EpsFn,
        schedule: NoiseSchedule,
        images: Tensor,
        mask: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Fill the region where ``mask`` is 1 of ``images`` (N, C, H, W) in [−1, 1]; keep the rest exactly.

        ``mask`` is (N, 1, H, W) or (1, 1, H, W) with values 0 (keep) and 1 (regenerate). All noise comes
        from ``generator``, so a seed gives the same images.
        """
        visits = self.time_schedule(sampler, schedule.timesteps)
        step_sampler = _step_sampler(sampler)
        device = schedule.betas.device
        images = images.to(device)
        regenerate = _check_mask(mask, images).to(device)

        def paste(x: Tensor, t: int) -> Tensor:
            if t < 0:
                return torch.where(regenerate, x, images)
            noise = gaussian_noise(images.shape, generator, device)
            return torch.where(regenerate, x, schedule.q_sample(images, batch_t(t, images), noise))

        x = paste(gaussian_noise(images.shape, generator, device), visits[0])
        for t, s in pairwise(visits):
            if s < t:
                x = paste(step_sampler.step(eps_fn, schedule, x, t, s, generator), s)
            else:
                ratio = schedule.alphas_cumprod[s] / schedule.alphas_cumprod[t]
                x = ratio.sqrt() * x + (1 - ratio).sqrt() * gaussian_noise(x.shape, generator, device)
        return x


def _step_sampler(sampler: Sampler) -> StepSampler:
    """``sampler`` if it moves one step at a time, else a GenlabError naming it and the ones that can inpaint."""
    if isinstance(sampler, StepSampler):
        return sampler
    usable = [name for name in registered_samplers() if issubclass(sampler_class(name), StepSampler)]
    raise GenlabError(
        f"sampler={sampler.name or type(sampler).__name__} cannot inpaint: RePaint jumps back in time between "
        f"reverse steps, which needs a sampler that moves one step at a time ({', '.join(usable)}); multistep "
        f"samplers such as DPM-Solver++ keep a history of earlier predictions that does not compose with jumps. "
        f"Use sampler={' or sampler='.join(usable)}."
    )


def _check_mask(mask: Tensor, images: Tensor) -> Tensor:
    """The mask as a boolean (N or 1, 1, H, W) tensor, True = regenerate; a GenlabError if it does not fit."""
    if images.ndim != 4:
        raise GenlabError(f"inpainting needs images of shape (N, C, H, W), got {tuple(images.shape)}.")
    n, _, h, w = images.shape
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] not in (1, n) or tuple(mask.shape[2:]) != (h, w):
        raise GenlabError(
            f"the mask's shape {tuple(mask.shape)} does not fit the images' {tuple(images.shape)}: "
            f"it must be ({n} or 1, 1, {h}, {w})."
        )
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise GenlabError("the mask must hold only 0 (keep) and 1 (regenerate); threshold it first.")
    return mask == 1
