"""What the denoising network predicts (``model.prediction``) and the min-SNR-γ loss weight.

With x_t = α_t x_0 + σ_t ε, α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t) (so α_t² + σ_t² = 1), the network predicts one of

- ``eps``: the noise ε (Ho et al. 2020);
- ``v``: the velocity v = α_t ε − σ_t x_0 (Salimans & Ho 2022), so x_0 = α_t x_t − σ_t v and ε = σ_t x_t + α_t v;
- ``x0``: the clean image x_0.

The samplers take an ε-predictor ``eps_fn(x_t, t)``; :func:`eps_fn_for` turns a network of any prediction type
into one, so every sampler accepts every prediction type. Timesteps may be fractional (the Heun sampler
evaluates between integers): α_t and σ_t then come from :meth:`NoiseSchedule.sigma_at`.

Min-SNR-γ (Hang et al. 2023) weights the per-timestep MSE on the target so that, measured in x_0-space, the
weight is min(SNR_t, γ), SNR_t = ᾱ_t/(1 − ᾱ_t) = α_t²/σ_t². Since ‖ε − ε̂‖² = SNR ‖x_0 − x̂_0‖² and
‖v − v̂‖² = (SNR + 1) ‖x_0 − x̂_0‖², the weight on the target's MSE is min(SNR, γ)/SNR for ε-prediction,
min(SNR, γ)/(SNR + 1) for v-prediction (as the paper gives), and min(SNR, γ) itself for x0-prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from genlab.diffusion.samplers.base import EpsFn
from genlab.diffusion.schedules import NoiseSchedule
from genlab.errors import GenlabError

PREDICTIONS = ("eps", "v", "x0")
LOSS_WEIGHTINGS = ("none", "min_snr")
MIN_SNR_GAMMA = 5.0

NetFn = Callable[[Tensor, Tensor], Tensor]


def check_prediction(prediction: str) -> str:
    """``prediction`` if it is one of :data:`PREDICTIONS`, else a GenlabError naming model.prediction."""
    if prediction not in PREDICTIONS:
        raise GenlabError(
            f"model.prediction={prediction} is not a prediction type: choose one of {', '.join(PREDICTIONS)} "
            "(the network predicts the noise ε, the velocity v = α ε − σ x0, or the clean image x0)."
        )
    return prediction


def check_min_snr_gamma(gamma: float) -> float:
    """γ of min-SNR-γ if it is a number > 0, else a GenlabError naming model.min_snr_gamma."""
    if isinstance(gamma, bool) or not isinstance(gamma, int | float) or not gamma > 0:
        raise GenlabError(
            f"model.min_snr_gamma={gamma} must be a number > 0: min-SNR-γ caps the loss weight at SNR = γ "
            f"(Hang et al. 2023 use γ = {MIN_SNR_GAMMA:g})."
        )
    return float(gamma)


def check_loss_weighting(weighting: str) -> str:
    """``weighting`` if it is one of :data:`LOSS_WEIGHTINGS`, else a GenlabError naming model.loss_weighting."""
    if weighting not in LOSS_WEIGHTINGS:
        raise GenlabError(
            f"model.loss_weighting={weighting} is not a loss weighting: choose one of {', '.join(LOSS_WEIGHTINGS)} "
            "(none = the plain MSE on the target, min_snr = min-SNR-γ, Hang et al. 2023)."
        )
    return weighting


def alpha_sigma(schedule: NoiseSchedule, t: Tensor, ndim: int = 1) -> tuple[Tensor, Tensor]:
    """(α_t, σ_t) at timesteps ``t`` of shape (N,), shaped (N, 1, ...) to broadcast over ``ndim`` dimensions.

    Integer ``t`` reads the schedule's table; fractional ``t`` uses σ(t) = √((1 − ᾱ)/ᾱ) from
    :meth:`NoiseSchedule.sigma_at`, α = 1/√(1 + σ²), σ_t = σ α.
    """
    shape = (-1, *([1] * (ndim - 1)))
    if not t.is_floating_point():
        return schedule.sqrt_alphas_cumprod[t].reshape(shape), schedule.sqrt_one_minus_alphas_cumprod[t].reshape(shape)
    sigma = schedule.sigma_at(t)
    alpha = torch.rsqrt(1 + sigma**2)
    return alpha.reshape(shape), (sigma * alpha).reshape(shape)


def snr(schedule: NoiseSchedule, t: Tensor) -> Tensor:
    """SNR_t = ᾱ_t/(1 − ᾱ_t) at timesteps ``t``, shape (N,)."""
    alpha, sigma = alpha_sigma(schedule, t)
    return (alpha / sigma) ** 2


def to_x0_eps(
    output: Tensor, x_t: Tensor, t: Tensor, schedule: NoiseSchedule, prediction: str
) -> tuple[Tensor, Tensor]:
    """(x̂_0, ε̂) implied by a network ``output`` of type ``prediction`` at (x_t, t)."""
    alpha, sigma = alpha_sigma(schedule, t, x_t.ndim)
    if check_prediction(prediction) == "eps":
        return (x_t - sigma * output) / alpha, output
    if prediction == "x0":
        return output, (x_t - alpha * output) / sigma
    return alpha * x_t - sigma * output, sigma * x_t + alpha * output


def training_target(prediction: str, x0: Tensor, eps: Tensor, t: Tensor, schedule: NoiseSchedule) -> Tensor:
    """What a network of type ``prediction`` learns to output for x_t = α_t x_0 + σ_t ε."""
    if check_prediction(prediction) == "eps":
        return eps
    if prediction == "x0":
        return x0
    alpha, sigma = alpha_sigma(schedule, t, x0.ndim)
    return alpha * eps - sigma * x0


def min_snr_weight(snr_t: Tensor, prediction: str, gamma: float = MIN_SNR_GAMMA) -> Tensor:
    """Min-SNR-γ weight of the MSE on ``prediction``'s target: min(SNR, γ) divided by SNR (eps), SNR + 1 (v), 1 (x0)."""
    capped = snr_t.clamp(max=check_min_snr_gamma(gamma))
    if check_prediction(prediction) == "eps":
        return capped / snr_t
    if prediction == "v":
        return capped / (snr_t + 1)
    return capped


def eps_fn_for(net_fn: NetFn, schedule: NoiseSchedule, prediction: str) -> EpsFn:
    """The ε-predictor of the samplers from ``net_fn(x_t, t)``, a network of type ``prediction``."""
    if check_prediction(prediction) == "eps":
        return net_fn

    def eps_fn(x_t: Tensor, t: Tensor) -> Tensor:
        return to_x0_eps(net_fn(x_t, t), x_t, t, schedule, prediction)[1]

    return eps_fn


@dataclass(frozen=True)
class Objective:
    """What a diffusion net learns (``model.prediction``, ``model.loss_weighting``, ``model.min_snr_gamma``),
    checked on construction: its training loss and the ε-predictor the samplers get from it."""

    prediction: str = "eps"
    loss_weighting: str = "none"
    min_snr_gamma: float = MIN_SNR_GAMMA

    def __post_init__(self) -> None:
        check_prediction(self.prediction)
        check_loss_weighting(self.loss_weighting)
        object.__setattr__(self, "min_snr_gamma", check_min_snr_gamma(self.min_snr_gamma))

    def loss(self, output: Tensor, x0: Tensor, eps: Tensor, t: Tensor, schedule: NoiseSchedule) -> Tensor:
        """The mean over the batch of each image's MSE to :func:`training_target` at x_t = α_t x_0 + σ_t ε, times
        :func:`min_snr_weight` at its t with ``min_snr`` (``none`` is ``F.mse_loss``: L_simple for ``eps``)."""
        per_image = (output - training_target(self.prediction, x0, eps, t, schedule)).square().flatten(1).mean(1)
        if self.loss_weighting == "min_snr":
            per_image = per_image * min_snr_weight(snr(schedule, t), self.prediction, self.min_snr_gamma)
        return per_image.mean()

    def eps_fn(self, net_fn: NetFn, schedule: NoiseSchedule) -> EpsFn:
        """The samplers' ε-predictor from ``net_fn(x_t, t)`` (:func:`eps_fn_for`)."""
        return eps_fn_for(net_fn, schedule, self.prediction)

    def check_sampling_prediction(self, prediction: Any) -> None:
        """Refuse a ``prediction=`` sampling option other than the trained one: the net's output type is fixed."""
        if prediction != self.prediction:
            raise GenlabError(
                f"prediction={prediction} contradicts this run: its net was trained with model.prediction="
                f"{self.prediction} (read from the run's config; one of {', '.join(PREDICTIONS)}), which every "
                "sampler converts to ε, and a net's output type cannot change after training. Drop prediction=."
            )
