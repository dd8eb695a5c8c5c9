"""Device, mixed precision and seeding: the environment a run trains in."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from bench.errors import ConfigError
from bench.model import distributed as dist


def select_device(spec: str) -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` / ``cuda:N`` must exist."""
    if spec == "auto":
        if dist.is_distributed() and torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"--device {spec!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec}: CUDA is not available on this machine; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type != "cpu":
        raise ConfigError(f"--device {spec!r}: use auto, cpu, cuda or cuda:N")
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return "cpu"


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bf16 where the GPU supports it, else fp16; none on the CPU unless asked."""
    if setting == "off":
        return None
    if setting == "bf16":
        return torch.bfloat16
    if setting == "fp16":
        return torch.float16
    if setting != "auto":
        raise ConfigError(f"train.amp={setting!r}: use auto, off, bf16 or fp16")
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast_factory(device: torch.device, dtype: torch.dtype | None) -> Callable[[], Any]:
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int, epoch: int = 0) -> None:
    """Reseed every generator from (seed, epoch), so an interrupted epoch replays exactly."""
    value = (seed * 1_000_003 + epoch) % (2**31)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)
