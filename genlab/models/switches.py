"""GPU switches of any genlab model, applied to its networks from outside the model classes.

``speed.channels_last=true`` stores the weights of the model's networks in the channels-last
memory format and hands them channels-last inputs (faster convolutions on tensor-core GPUs).
``speed.compile=true`` compiles each network's forward in place with ``nn.Module.compile``: the
modules are not wrapped or renamed, so checkpoints keep the same ``state_dict`` keys and
``genlab sample``, ``eval`` and ``resume`` load them with or without the switch.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import Metric, MetricCollection

from genlab.errors import GenlabError

SWITCH_KEYS = ("channels_last", "compile", "compile_backend")
DEBUG_BACKENDS = ("eager", "aot_eager")
# Lightning's values (with its short aliases 64, 32, 16, bf16).
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "64", "32", "16", "bf16")


def networks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's own networks: direct children holding parameters (torchmetrics metrics excluded)."""
    return [
        (name, child)
        for name, child in model.named_children()
        if not isinstance(child, Metric | MetricCollection) and next(child.parameters(), None) is not None
    ]


def _channels_last_inputs(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        a.contiguous(memory_format=torch.channels_last) if isinstance(a, Tensor) and a.ndim == 4 else a for a in args
    )


def _check_bool(key: str, value: object) -> None:
    if not isinstance(value, bool):
        raise GenlabError(f"speed.{key}={value} must be true or false.")


def check_compile_backend(backend: str) -> None:
    """Refuse a torch.compile setup that cannot work here, naming what to change."""
    if not torch._dynamo.is_dynamo_supported():
        raise GenlabError(
            "speed.compile=true: torch.compile is not supported on this platform/Python "
            f"(torch {torch.__version__}); set speed.compile=false."
        )
    known = (*torch._dynamo.list_backends(), *DEBUG_BACKENDS)
    if backend not in known:
        raise GenlabError(f"speed.compile_backend={backend} is not a torch.compile backend: choose one of {known}.")
    if backend == "inductor" and not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "c++", "clang++")):
        raise GenlabError(
            "speed.compile=true with speed.compile_backend=inductor needs a C++ compiler (g++ or clang++) on PATH "
            "to build its kernels: install one, or set speed.compile_backend=aot_eager, or speed.compile=false."
        )


def apply_switches(
    model: nn.Module, channels_last: bool = False, compile: bool = False, compile_backend: str = "inductor"
) -> nn.Module:
    """Apply ``channels_last`` and ``compile`` to ``model``'s networks in place; returns ``model``."""
    _check_bool("channels_last", channels_last)
    _check_bool("compile", compile)
    nets = networks(model)
    if channels_last:
        convs = [name for name, net in nets if any(p.ndim == 4 for p in net.parameters())]
        if not convs:
            raise GenlabError(
                f"speed.channels_last=true: {type(model).__name__} here has no convolution layers (networks: "
                f"{', '.join(name for name, _ in nets)}), so the memory format changes nothing; set it to false "
                "or use a conv model (cnn, dcgan, cgan, ddpm, pix2pix)."
            )
        for _, net in nets:
            net.to(memory_format=torch.channels_last)
            net.register_forward_pre_hook(_channels_last_inputs)
    if compile:
        check_compile_backend(compile_backend)
        for _, net in nets:
            net.compile(backend=compile_backend)
    return model


def check_precision(precision: object, accelerator: object) -> None:
    """Refuse ``trainer.precision`` values Lightning would reject or run badly on this accelerator."""
    value = str(precision)
    if value not in PRECISIONS:
        raise GenlabError(f"trainer.precision={precision} is not one of {', '.join(PRECISIONS)}.")
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if value.startswith("16") and not on_gpu:
        raise GenlabError(
            f"trainer.precision={value} (float16) needs a CUDA GPU; on a CPU use trainer.precision=bf16-mixed."
        )
    if value.startswith("bf16") and on_gpu and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise GenlabError(
            f"trainer.precision={value}: this GPU ({torch.cuda.get_device_name()}) has no bfloat16 support; "
            "use trainer.precision=16-mixed."
        )
