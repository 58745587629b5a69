"""The sampler interface: stateless objects of a noise predictor and a schedule.

``eps_fn(x_t, t)`` is any callable returning ε_θ(x_t, t) (the model adds labels and guidance).
Every sampler draws its noise from an explicit ``torch.Generator``, so a seed gives identical
samples; each can start from a given ``x_start`` at timestep ``start_t`` (image-to-image,
reconstructions) and can return the trajectory of intermediate x_t in the papers' 1-based time
(``start_t + 1`` for the start, 0 for the sample).

A sampler's options are the fields of its frozen dataclass: they are validated on construction
(``__post_init__``) and against a schedule by :meth:`Sampler.check`. Subclasses set ``name`` and
join the registry that :func:`make_sampler` reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from genlab.diffusion.schedules import NoiseSchedule
from genlab.errors import GenlabError

EpsFn = Callable[[Tensor, Tensor], Tensor]
Trajectory = list[tuple[int, Tensor]]

_REGISTRY: dict[str, type[Sampler]] = {}


def gaussian_noise(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Standard normal noise drawn on the generator's device, moved to ``device``."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(*shape, generator=generator, device=gen_device).to(device)


def batch_t(t: int, x: Tensor) -> Tensor:
    """Timestep ``t`` for every image of the batch ``x``."""
    return torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)


def check_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an int ≥ ``minimum``, or a GenlabError naming the option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise GenlabError(f"{name}={value} must be an integer ≥ {minimum}.")
    return value


@dataclass(frozen=True)
class Sampler:
    """Base of every sampler. Subclasses implement :meth:`sample` (or :meth:`StepSampler.step`).

    Args:
        clip_x0: clip the predicted x_0 to [−1, 1] at every step.
    """

    name: ClassVar[str] = ""
    clip_x0: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _REGISTRY[cls.name] = cls

    def __post_init__(self) -> None:
        if not isinstance(self.clip_x0, bool):
            raise GenlabError(f"clip_x0={self.clip_x0} must be true or false.")

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The options this sampler takes (its dataclass fields)."""
        return tuple(field.name for field in dataclasses.fields(cls))

    def options(self) -> dict[str, Any]:
        """This sampler's name and option values (written beside scores in metrics.json)."""
        return {"sampler": self.name, **dataclasses.asdict(self)}

    def replace(self, **options: Any) -> Sampler:
        """A copy with some options changed; an option of another sampler is refused by name."""
        unknown = sorted(set(options) - set(self.option_names()))
        if unknown:
            raise GenlabError(
                f"{unknown[0]}={options[unknown[0]]} is not an option of sampler={self.name} "
                f"(it takes {', '.join(self.option_names())})."
            )
        return dataclasses.replace(self, **options)

    def check(self, timesteps: int) -> None:
        """Refuse options that do not fit a schedule of ``timesteps`` steps."""

    @classmethod
    def max_steps(cls, timesteps: int) -> int | None:
        """The largest ``steps`` a schedule of ``timesteps`` steps allows (None: no ``steps`` limit)."""
        return None

    def nfe(self, timesteps: int, start_t: int | None = None) -> int:
        """Network evaluations of one sample from ``start_t`` (default T − 1); guidance doubles them."""
        raise NotImplementedError

    def sample(
        self,
        eps_fn: EpsFn,
        schedule: NoiseSchedule,
        shape: Sequence[int],
        generator: torch.Generator | None = None,
        x_start: Tensor | None = None,
        start_t: int | None = None,
        return_trajectory: bool = False,
    ) -> Tensor | tuple[Tensor, Trajectory]:
        """Denoise pure noise (or ``x_start`` at ``start_t``) down to an image."""
        raise NotImplementedError

    def start(
        self,
        schedule: NoiseSchedule,
        shape: Sequence[int],
        generator: torch.Generator | None,
        x_start: Tensor | None,
        start_t: int | None,
    ) -> tuple[Tensor, int]:
        """The first x_t and its timestep: pure noise at T − 1 unless ``x_start`` is given."""
        T = schedule.timesteps
        t = T - 1 if start_t is None else int(start_t)
        if not 0 <= t < T:
            raise GenlabError(f"start_t={t} is outside the schedule's timesteps 0..{T - 1}.")
        self.check(T)
        device = schedule.betas.device
        x = gaussian_noise(shape, generator, device) if x_start is None else x_start.to(device)
        return x, t

    def predict(self, eps_fn: EpsFn, schedule: NoiseSchedule, x: Tensor, t: int) -> tuple[Tensor, Tensor]:
        """(x̂_0, ε̂) at timestep ``t``; with ``clip_x0`` x̂_0 is clipped and ε̂ made consistent with it."""
        tt = batch_t(t, x)
        eps = eps_fn(x, tt)
        x0 = schedule.predict_x0(x, tt, eps)
        if self.clip_x0:
            x0 = x0.clamp(-1, 1)
            eps = schedule.predict_eps(x, tt, x0)
        return x0, eps


@dataclass(frozen=True)
class StepSampler(Sampler):
    """A sampler that moves from timestep t to an earlier s one step at a time (DDPM, DDIM).

    Subclasses give the descending :meth:`timesteps` and the transition :meth:`step`; RePaint-style
    editors can reuse both with their own time schedule.
    """

    def timesteps(self, timesteps: int, start_t: int) -> list[int]:
        """The descending timesteps visited from ``start_t`` (the last is 0)."""
        raise NotImplementedError

    def step(
        self, eps_fn: EpsFn, schedule: NoiseSchedule, x: Tensor, t: int, s: int, generator: torch.Generator | None
    ) -> Tensor:
        """x_s from x_t (s < t; s = −1 means the final image x_0)."""
        raise NotImplementedError

    def nfe(self, timesteps: int, start_t: int | None = None) -> int:
        return len(self.timesteps(timesteps, timesteps - 1 if start_t is None else start_t))

    @torch.no_grad()
    def sample(
        self,
        eps_fn: EpsFn,
        schedule: NoiseSchedule,
        shape: Sequence[int],
        generator: torch.Generator | None = None,
        x_start: Tensor | None = None,
        start_t: int | None = None,
        return_trajectory: bool = False,
    ) -> Tensor | tuple[Tensor, Trajectory]:
        x, t_first = self.start(schedule, shape, generator, x_start, start_t)
        times = self.timesteps(schedule.timesteps, t_first)
        trajectory = [(t_first + 1, x.cpu())] if return_trajectory else []
        for i, t in enumerate(times):
            s = times[i + 1] if i + 1 < len(times) else -1
            x = self.step(eps_fn, schedule, x, t, s, generator)
            if return_trajectory:
                trajectory.append((s + 1, x.cpu()))
        return (x, trajectory) if return_trajectory else x


def registered_samplers() -> tuple[str, ...]:
    """Names of the samplers whose modules have been imported."""
    return tuple(sorted(_REGISTRY))


def sampler_class(name: str) -> type[Sampler]:
    """The sampler class registered under ``name``, or a GenlabError listing the known ones."""
    if name not in _REGISTRY:
        raise GenlabError(f"sampler={name} is not a sampler: choose one of {', '.join(registered_samplers())}.")
    return _REGISTRY[name]


def sampler_option_help() -> dict[str, str]:
    """Every registered sampler's options, each with the samplers that take it (``generation_options``)."""
    options: dict[str, str] = {}
    for name in registered_samplers():
        for option in sampler_class(name).option_names():
            options[option] = f"{options[option]}, {name}" if option in options else f"an option of sampler={name}"
    return options


def make_sampler(name: str, **options: Any) -> Sampler:
    """A sampler by name with ``options`` (each must be one of its fields)."""
    cls = sampler_class(name)
    unknown = sorted(set(options) - set(cls.option_names()))
    if unknown:
        raise GenlabError(
            f"{unknown[0]}={options[unknown[0]]} is not an option of sampler={name} "
            f"(it takes {', '.join(cls.option_names())})."
        )
    return cls(**options)
