"""Scorers built for a run's data: feature networks, cached real features, and how samples are drawn."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from genlab.capabilities import Denoises, Generates, Translates
from genlab.data.unpaired import UnpairedDataModule
from genlab.diffusion.samplers import sampler_class
from genlab.errors import GenlabError
from genlab.metrics.evaluate import CLASS_METRICS, GenerativeScorer, ScoringSettings, feature_choice
from genlab.metrics.features import ClassifierFeatures, FeatureNetwork, inception_network
from genlab.metrics.memorization import NEIGHBOURS, MemorisationReference
from genlab.metrics.real_stats import real_features, stored_image_features, stored_images
from genlab.metrics.translation import WITHOUT_FID, TranslationScorer
from genlab.metrics.unpaired_translation import UnpairedTranslationScorer
from genlab.scoring.reference import reference_classifier

log = logging.getLogger("genlab")


def settings_of(settings: DictConfig) -> ScoringSettings:
    """The batch size and KID/PR parameters of an ``eval`` settings node."""
    return ScoringSettings(
        batch_size=int(settings.batch_size),
        kid_subsets=int(settings.kid_subsets),
        kid_subset_size=int(settings.kid_subset_size),
        pr_k=int(settings.pr_k),
    )


def memorisation_reference(
    data_cfg: DictConfig,
    settings: DictConfig,
    *,
    split: str,
    real: torch.Tensor,
    network: FeatureNetwork,
    cache_dir: str | Path,
    device: torch.device,
    datamodule: Any,
) -> MemorisationReference | None:
    """The run's training images (the first ``eval.memorisation.max_train``, as trained on: a few-shot subset
    is the subset) and the first ``eval.memorisation.n`` images of ``split`` (with their ``real`` features) as
    the baseline; no baseline when ``split`` is the training split. None when the check is off (n=0) or the
    training split is too small for it."""
    options = settings.get("memorisation") or {}
    samples = int(options.get("n", 1000))
    if samples <= 0:
        return None
    n_train = min(len(datamodule.dataset("train")), int(options.get("max_train", 10000)))
    if n_train <= NEIGHBOURS:
        log.warning(
            "memorisation check skipped: data=%s has %d training images (needs > %d)",
            data_cfg.name,
            n_train,
            NEIGHBOURS,
        )
        return None
    train, train_features = stored_image_features(datamodule, data_cfg, "train", n_train, network, cache_dir, device)
    test = test_features = None
    if split != "train":
        n_test = min(samples, len(real))
        test, test_features = stored_images(datamodule, split, n_test), real[:n_test]
    rows = int(options.get("rows", 16))
    return MemorisationReference(train, train_features, test, test_features, samples=samples, rows=rows)


def generative_scorer(
    data_cfg: DictConfig,
    settings: DictConfig,
    *,
    split: str,
    features: str | None,
    metrics: Sequence[str],
    n: int,
    cache_dir: str | Path,
    device: torch.device,
    datamodule: Any,
) -> GenerativeScorer:
    """A :class:`GenerativeScorer` of ``n`` samples against ``split`` of the run's data."""
    choice = feature_choice(features, data_cfg.get("fid_features"))
    classifier = None
    if choice == "classifier" or any(m in CLASS_METRICS for m in metrics):
        classifier = reference_classifier(data_cfg, settings, cache_dir, device)
    network: FeatureNetwork = classifier if choice == "classifier" else inception_network(settings, device)
    n_real = min(len(datamodule.dataset(split)), int(settings.max_n))
    real = real_features(datamodule, data_cfg, split, n_real, network, cache_dir, device)
    protocol = {"split": split, "data": str(data_cfg.name), "data_fingerprint": datamodule.fingerprint(split)}
    memorisation = None
    if "memorisation" in metrics:
        memorisation = memorisation_reference(
            data_cfg,
            settings,
            split=split,
            real=real,
            network=network,
            cache_dir=cache_dir,
            device=device,
            datamodule=datamodule,
        )
    return GenerativeScorer(
        network,
        real,
        classifier=classifier,
        metrics=metrics,
        n=n,
        num_classes=int(data_cfg.num_classes),
        settings=settings_of(settings),
        protocol=protocol,
        memorisation=memorisation,
    )


def target_domain(data_cfg: DictConfig) -> DictConfig:
    """The data config of the target images B: ``data.source`` for edge pairs built from an image
    dataset (its classes and feature network apply to the targets), else the paired dataset itself."""
    source = data_cfg.get("source")
    if source is None:
        return data_cfg
    return OmegaConf.create(OmegaConf.to_container(source, resolve=True))


def translation_scorer(
    data_cfg: DictConfig,
    settings: DictConfig,
    *,
    split: str,
    features: str | None,
    metrics: Sequence[str],
    n: int,
    cache_dir: str | Path,
    device: torch.device,
    datamodule: Any,
    translator: Translates | None = None,
) -> TranslationScorer:
    """A scorer of ``translator`` (None: a paired one) on the first ``n`` rows of ``split``, FID in the target
    domain's features: a :class:`TranslationScorer` of pairs for a paired translator (``translator.paired``),
    an :class:`UnpairedTranslationScorer` of both directions for an unpaired one. Where the target domain is
    labelled, the class consistency ``class_acc`` is scored with its reference classifier (when that is the
    FID network, or when ``metrics`` asks for ``class_acc``)."""
    target = target_domain(data_cfg)
    network = None
    if "fid" in metrics:
        choice = feature_choice(features or data_cfg.get("fid_features"), target.get("fid_features"))
        if choice == "classifier":
            network = reference_classifier(target, settings, cache_dir, device)
        else:
            try:
                network = inception_network(settings, device)
            except GenlabError as err:
                note = ""
                if int(target.get("num_classes", 0)) < 2:
                    note = f"(features=classifier does not apply: the targets of data={data_cfg.name} have no labels.) "
                raise GenlabError(f"{err} {note}To score the translations without FID: {WITHOUT_FID}.") from None
    classifier = network if isinstance(network, ClassifierFeatures) else None
    if "class_acc" in metrics and classifier is None:
        if int(target.get("num_classes", 0)) < 2:
            raise GenlabError(
                f"metrics=class_acc needs labelled targets, but those of data={data_cfg.name} have no classes."
            )
        classifier = reference_classifier(target, settings, cache_dir, device)
    protocol = {"split": split, "data": str(data_cfg.name), "data_fingerprint": datamodule.fingerprint(split)}
    if network is not None:
        protocol["feature_data"] = str(target.name)
    if translator is None or translator.paired:
        size = len(datamodule.dataset(split))
        return TranslationScorer(
            network, metrics=metrics, n=n, split_size=size, protocol=protocol, classifier=classifier
        )
    sizes = {domain: len(datamodule.domain(split, domain)) for domain in ("A", "B")}
    return UnpairedTranslationScorer(
        network,
        metrics=metrics,
        n=n,
        sizes=sizes,
        true_pairs=datamodule.has_true_pairs(split),
        protocol=protocol,
        classifier=classifier,
    )


def input_labels(datamodule: Any, split: str) -> torch.Tensor | None:
    """The classes of the inputs A of ``split`` in order (the classes of their pairs), None when unlabelled."""
    if isinstance(datamodule, UnpairedDataModule):
        labels = datamodule.domain_labels(split, "A")
    else:
        labels = datamodule.dataset(split).labels
    return labels if len(labels) and bool((labels >= 0).all()) else None


def score_translations(
    scorer: TranslationScorer, translator: Translates, datamodule: Any, split: str
) -> dict[str, Any]:
    """Score ``translator`` on ``split`` with a scorer from :func:`translation_scorer`."""
    labels = input_labels(datamodule, split)
    if isinstance(scorer, UnpairedTranslationScorer):
        return scorer.score(translator.translate, lambda domain: datamodule.domain_batches(split, domain), labels)
    return scorer.score(translator.translate, datamodule.dataloader(split), labels)


def generation_options(model: Generates, defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The options to sample with: ``given`` over the ``defaults`` the model accepts.

    A sampler named in ``given`` replaces the defaults' sampler together with its options.
    """
    accepted = model.generation_options()
    base = {k: v for k, v in defaults.items() if k in accepted and v is not None}
    if isinstance(model, Denoises):
        if "sampler" in given:
            base = {k: v for k, v in base.items() if k in ("guidance", "sampler")}
        if isinstance(base.get("steps"), int):  # a default (e.g. DPM-Solver++ 20) fits a shorter schedule
            timesteps = model.schedule.timesteps
            limit = sampler_class(str(base["sampler"])).max_steps(timesteps) if "sampler" in base else timesteps
            base["steps"] = base["steps"] if limit is None else min(base["steps"], limit)
    return {**base, **{k: v for k, v in given.items() if v is not None}}


def generation_record(model: Generates, options: Mapping[str, Any]) -> dict[str, Any]:
    """How samples were drawn, for metrics.json: the sampler, its options and NFE for diffusion models."""
    if not isinstance(model, Denoises):
        return {"generation_options": dict(options)}
    sampler_options = {k: v for k, v in options.items() if k != "guidance"}
    sampler = model.resolve_sampler(**sampler_options)
    labels = torch.zeros(1, dtype=torch.long) if model.num_classes > 0 else None
    record = {
        "generation_options": dict(options),
        "sampler": sampler.name,
        "nfe": model.nfe(sampler, labels, options.get("guidance")),
    }
    record["sampler_options"] = {k: v for k, v in sampler.options().items() if k != "sampler"}
    return record
