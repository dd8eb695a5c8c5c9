"""Example bench plugin: one audio encoder, one loss and one dataset.

Only ``bench.hookimpl`` is imported from bench. Everything heavy (torch) is imported inside the
factories, so ``bench ls`` stays fast.
"""

from __future__ import annotations

from typing import Any

from bench import hookimpl


@hookimpl
def register_audio_encoders(register: Any) -> None:
    register("example-mfcc", build_mfcc)


@hookimpl
def register_losses(register: Any) -> None:
    register("example-sigmoid", build_sigmoid)


@hookimpl
def register_datasets(register: Any) -> None:
    register("example-tones", build_tones)


def build_mfcc(n_bands: int = 40, n_coeffs: int = 20, hidden: int = 128, embed_dim: int = 64) -> Any:
    """Mean and std of MFCCs over time, then a two-layer MLP (16 kHz input)."""
    from bench_example_plugin.models import MfccEncoder

    return MfccEncoder(n_bands=int(n_bands), n_coeffs=int(n_coeffs), hidden=int(hidden), embed_dim=int(embed_dim))


def build_sigmoid(scale: float = 10.0, bias: float = -10.0, learnable: bool = True) -> Any:
    """SigLIP-style loss: every (audio, caption) pair of the batch is a binary match/no-match."""
    from bench_example_plugin.models import SigmoidLoss

    return SigmoidLoss(scale=float(scale), bias=float(bias), learnable=bool(learnable))


def build_tones(root: str = "", seconds: float = 1.0) -> Any:
    """32 synthetic tones with two captions each, written as wav files under ``root`` on first use."""
    from bench_example_plugin.tones import Tones

    return Tones(root=root, seconds=float(seconds))
