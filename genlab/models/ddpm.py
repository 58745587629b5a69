"""DDPM (Ho et al. 2020) as a LightningModule: a net predicting ε (L_simple), v or x_0, optionally min-SNR-γ
weighted, EMA weights for sampling, and an optional class-conditional variant with classifier-free guidance
(Ho & Salimans 2021). Every sampler sees an ε-predictor (:meth:`DiffusionModule.denoiser`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from genlab import progress
from genlab.diffusion.prediction import MIN_SNR_GAMMA, Objective
from genlab.diffusion.samplers import EpsFn, Sampler, make_sampler, sampler_class
from genlab.diffusion.samplers.base import registered_samplers, sampler_option_help
from genlab.diffusion.samplers.ddpm import DDPMSampler
from genlab.diffusion.schedules import NoiseSchedule
from genlab.diffusion.sdedit import check_strength, noised
from genlab.errors import GenlabError
from genlab.models.base import GenlabModule, OptimizerFactory, check_finite, check_image_data, make_optimizer
from genlab.models.ema import EMA, make_ema, migrate_ema_state, sampling_choice
from genlab.noise.priors import GaussianNoise, NoiseDist


class DiffusionModule(GenlabModule):
    """Denoising diffusion model: a net f_θ(x_t, t[, y]) at x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε learns ε (L_simple
    ‖ε − f_θ‖², the default), v or x_0 (``prediction``; :mod:`genlab.diffusion.prediction`).

    Logs ``train/loss``, ``val/loss`` (EMA net, fixed t and noise). Samples with the EMA weights (``ema_net``)
    through a sampler object (:mod:`genlab.diffusion.samplers`), the run's ``sampler`` or one named then.

    Args:
        net: a partial noise-prediction net, called with ``num_classes`` (0 when unconditional).
        schedule: the noise schedule (the top-level ``schedule`` group).
        optimizer: a partial optimizer called with the net's parameters.
        channels, image_size: the generated images' shape.
        num_classes: the dataset's classes (used when ``conditional``).
        conditional: train with labels (dropped to the null class with ``label_dropout``).
        label_dropout: probability of replacing a label by the null class during training.
        noise_dist: the run's ``noise_dist`` (Gaussian only); ema_decay, ema_half_life_images: see :mod:`.ema`.
        sampler: the default sampler object (``configs/model/sampler/<name>.yaml``).
        guidance: default guidance scale s, ε = ε(∅) + s (ε(y) − ε(∅)); 1 = plain conditional, 0 = unconditional.
        sample_batch_size: images denoised at once by :meth:`generate` and :meth:`edit`.
        prediction: what the net predicts: ``eps`` (runs saved without it), ``v`` or ``x0``.
        loss_weighting: ``none`` (MSE) or ``min_snr`` (min-SNR-γ weights, γ = ``min_snr_gamma`` > 0, 5 by default).
        scheduler: optional partial LR scheduler called with the optimizer.
        **meta: the model config's ``name``, ``epochs``, ``monitor``.
    """

    def __init__(
        self,
        net: Callable[..., nn.Module],
        schedule: NoiseSchedule,
        optimizer: OptimizerFactory,
        channels: int,
        image_size: int,
        num_classes: int = 0,
        conditional: bool = False,
        label_dropout: float = 0.1,
        noise_dist: NoiseDist | None = None,
        ema_decay: float | None = 0.999,
        ema_half_life_images: int | None = None,
        sampler: Sampler | None = None,
        guidance: float | None = None,
        sample_batch_size: int = 256,
        prediction: str = "eps",
        loss_weighting: str = "none",
        min_snr_gamma: float = MIN_SNR_GAMMA,
        scheduler: Callable[..., Any] | None = None,
        **meta: Any,
    ) -> None:
        super().__init__(**meta)
        if noise_dist is not None and not isinstance(noise_dist, GaussianNoise):
            name = getattr(noise_dist, "name", type(noise_dist).__name__)
            raise GenlabError(
                f"noise_dist={name} cannot be used with a diffusion model: its forward process "
                "q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) is Gaussian by definition. Use noise_dist=gaussian."
            )
        if conditional and num_classes < 1:
            raise GenlabError(
                "model.conditional=true needs a labelled dataset (data.num_classes > 0); "
                "train model=ddpm on unlabelled data."
            )
        if not 0 <= label_dropout < 1:
            raise GenlabError(f"model.label_dropout={label_dropout} must be in [0, 1).")
        self.num_classes = num_classes if conditional else 0
        self.net = net(num_classes=self.num_classes)
        self.ema_net = make_ema(self.net, ema_decay, ema_half_life_images) or EMA(self.net)  # both null: refused
        self.schedule = schedule
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.image_shape = (channels, image_size, image_size)
        self.label_dropout = label_dropout
        self.sampler = sampler if sampler is not None else DDPMSampler()
        self.sampler.check(schedule.timesteps)
        self.default_guidance = None if guidance is None else self._check_guidance(guidance)
        self.sample_batch_size = sample_batch_size
        self.objective = Objective(prediction, loss_weighting, min_snr_gamma)

    # ----- training -----------------------------------------------------------------------------

    def diffusion_loss(self, net: nn.Module, x0: Tensor, labels: Tensor | None, generator=None) -> Tensor:
        """The objective on a batch, t ~ U{0..T−1}, ε ~ N(0, I): MSE to the ``prediction`` target, min-SNR-γ
        weighted with ``loss_weighting=min_snr`` (L_simple for ε-prediction without weighting)."""
        t = torch.randint(0, self.schedule.timesteps, (x0.shape[0],), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
        return self.objective.loss(net(self.schedule.q_sample(x0, t, noise), t, labels), x0, noise, t, self.schedule)

    def _train_labels(self, labels: Tensor) -> Tensor | None:
        if self.num_classes == 0:
            return None
        if bool((labels < 0).any()):
            raise GenlabError("a conditional diffusion model needs labels, but this dataset has unlabelled images.")
        drop = torch.rand(labels.shape, device=labels.device) < self.label_dropout
        return torch.where(drop, torch.full_like(labels, self.num_classes), labels)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        loss = self.diffusion_loss(self.net, images, self._train_labels(labels))
        check_finite(
            loss, "train/loss", self.global_step, self.current_epoch, "Try a lower learning rate (model.optimizer.lr)."
        )
        self.log_step({"train/loss": loss}, prog_bar=True, on_epoch=False)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        generator = torch.Generator(images.device).manual_seed(batch_idx)
        labels = labels if self.num_classes > 0 else None
        self.log("val/loss", self.diffusion_loss(self.ema_net.module, images, labels, generator), prog_bar=True)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.ema_net.update(self.net, self.images_per_update(len(batch[0])))

    def configure_optimizers(self) -> Any:
        optimizer = make_optimizer(self.optimizer_factory, self.net.parameters(), "optimizer")
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer=optimizer)}

    def check_data(self, datamodule: Any) -> None:
        check_image_data(self.config_name, self.image_shape, self.num_classes, datamodule)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        migrate_ema_state(checkpoint["state_dict"], "ema_net", int(checkpoint.get("global_step", 0)))

    # ----- sampling (capabilities Generates, Edits, Denoises) -----------------------------------

    def generation_options(self) -> Mapping[str, str]:
        options = {"sampler": f"the sampler: {', '.join(registered_samplers())} (default {self.sampler.name})"}
        options["prediction"] = f"what the net predicts, fixed by training: {self.objective.prediction}"
        options["ema"] = "true (default): the EMA net; false: the live one"
        if self.num_classes > 0:
            options["guidance"] = "classifier-free guidance scale (1 = plain conditional, 0 = unconditional)"
        return options | {key: text for key, text in sampler_option_help().items() if key not in options}

    def sampling_network(self, ema: bool | None = None) -> nn.Module:
        """The ε-predictor that samples (capability Exports): the EMA copy, or the live net with ``ema=false``."""
        return sampling_choice(self.net, self.ema_net, ema)

    def resolve_sampler(self, sampler: str | Sampler | None = None, **options: Any) -> Sampler:
        """The sampler to use: the run's default, or the one named, with ``options`` changed.

        Options both samplers have (e.g. ``clip_x0``) keep the run's setting unless given. A ``prediction``
        option is accepted only when it is the run's own (the net's output type is fixed by training).
        """
        self.objective.check_sampling_prediction(options.pop("prediction", self.objective.prediction))
        if isinstance(sampler, Sampler):
            chosen = sampler.replace(**options)
        elif sampler is None or sampler == self.sampler.name:
            chosen = self.sampler.replace(**options)
        else:
            shared = set(sampler_class(str(sampler)).option_names()) & set(self.sampler.option_names())
            inherited = {key: value for key, value in self.sampler.options().items() if key in shared}
            chosen = make_sampler(str(sampler), **{**inherited, **options})
        chosen.check(self.schedule.timesteps)
        return chosen

    def _check_guidance(self, guidance: Any) -> float:
        if self.num_classes == 0:
            raise GenlabError(
                f"guidance={guidance} needs a conditional model, but this run is unconditional: drop guidance= "
                "or train model=cddpm (classifier-free guidance)."
            )
        if isinstance(guidance, bool) or not isinstance(guidance, int | float) or not guidance >= 0:
            raise GenlabError(f"guidance={guidance} must be ≥ 0 (1 = plain conditional sampling, 0 = unconditional).")
        return float(guidance)

    def guidance_scale(self, guidance: float | None = None) -> float:
        """The guidance scale to use: the given one, else the run's default, else 1 (plain conditional)."""
        if guidance is not None:
            return self._check_guidance(guidance)
        return self.default_guidance if self.default_guidance is not None else 1.0

    def nfe(self, sampler: Sampler, labels: Tensor | None = None, guidance: float | None = None) -> int:
        """Network evaluations per image with ``sampler``: guidance ≠ 1 on labelled samples doubles them."""
        guided = labels is not None and self.num_classes > 0 and self.guidance_scale(guidance) != 1.0
        return sampler.nfe(self.schedule.timesteps) * (2 if guided else 1)

    def denoiser(self, labels: Tensor | None, guidance: float | None = None, net: nn.Module | None = None) -> EpsFn:
        """ε(x_t, t) of the EMA net for ``labels`` (None → the null class), with classifier-free guidance.

        The net's output (of type ``model.prediction``) is converted to ε. Guidance mixes the outputs first: the
        conversion is affine in the output at a given (x_t, t), so this is ε(∅) + s (ε(y) − ε(∅)).
        """
        net = self.ema_net.module if net is None else net
        labels = labels if self.num_classes > 0 else None
        scale = 1.0 if labels is None else self.guidance_scale(guidance)

        def output(x: Tensor, t: Tensor) -> Tensor:
            if scale == 1.0:
                return net(x, t, labels)
            null = torch.full_like(labels, self.num_classes)
            cond, uncond = net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null])).chunk(2)
            return uncond + scale * (cond - uncond)

        return self.objective.eps_fn(output, self.schedule)

    def _check_labels(self, labels: Tensor | None) -> None:
        if labels is not None and self.num_classes == 0:
            raise GenlabError("labels were given, but this diffusion model is unconditional.")

    @torch.no_grad()
    def generate(
        self,
        n: int,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | Sampler | None = None,
        guidance: float | None = None,
        ema: bool | None = None,
        **sampler_options: Any,
    ) -> Tensor:
        """``n`` images in [-1, 1] from the EMA net (the live one with ``ema=False``), a chunk at a time."""
        self._check_labels(labels)
        chosen = self.resolve_sampler(sampler, **sampler_options)
        return self._sample_in_chunks(n, labels, generator, chosen, guidance, None, self.sampling_network(ema))

    @torch.no_grad()
    def edit(
        self,
        images: Tensor,
        strength: float,
        labels: Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str | Sampler | None = None,
        guidance: float | None = None,
        ema: bool | None = None,
        **sampler_options: Any,
    ) -> Tensor:
        """SDEdit: noise ``images`` (in [-1, 1]) to t0 = strength·T, then denoise back to 0 with the sampler,
        guided by ``labels`` on a conditional model. Strength 0 returns the images; strength 1 starts from
        pure noise (a new sample). The sampler's steps count over the whole schedule (scaled to the span)."""
        strength = check_strength(strength)
        self._check_labels(labels)
        chosen = self.resolve_sampler(sampler, **sampler_options)
        if tuple(images.shape[1:]) != self.image_shape:
            raise GenlabError(
                f"SDEdit inputs have shape {tuple(images.shape[1:])}, but this model makes images of shape "
                f"{self.image_shape} (channels, height, width)."
            )
        images = images.to(self.device)
        if strength == 0:
            return images.clone()
        net = self.sampling_network(ema)
        return self._sample_in_chunks(len(images), labels, generator, chosen, guidance, (images, strength), net)

    def _sample_in_chunks(
        self,
        n: int,
        labels: Tensor | None,
        generator: torch.Generator | None,
        sampler: Sampler,
        guidance: float | None,
        edit: tuple[Tensor, float] | None,
        net: nn.Module,
    ) -> Tensor:
        """Run ``sampler`` on ``sample_batch_size`` images at a time, from noise or from noised ``edit`` images;
        each network evaluation reports its share of the chunk to an open progress bar (:mod:`genlab.progress`)."""
        out = []
        for first in range(0, n, self.sample_batch_size):
            part = slice(first, min(n, first + self.sample_batch_size))
            chunk = None if labels is None else labels[part].to(self.device)
            shape = (part.stop - part.start, *self.image_shape)
            start: dict[str, Any] = {}
            if edit is not None:
                x_t, start_t = noised(self.schedule, edit[0][part], edit[1], generator)
                start = {"x_start": x_t, "start_t": start_t}
            eps_fn = self.denoiser(chunk, guidance, net)
            share = shape[0] / sampler.nfe(self.schedule.timesteps, start.get("start_t"))

            def reporting(x: Tensor, t: Tensor, eps_fn: EpsFn = eps_fn, share: float = share) -> Tensor:
                progress.advance(share)
                return eps_fn(x, t)

            with progress.part(shape[0]):
                out.append(sampler.sample(reporting, self.schedule, shape, generator, **start))
        return torch.cat(out).clamp(-1, 1)
