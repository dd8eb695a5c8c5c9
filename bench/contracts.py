"""The component contracts, as ``typing.Protocol`` classes, and the checks that enforce them once.

A plugin is any module that an entry point in the group ``bench`` names; it implements the
``register_*`` hooks of :mod:`bench.hookspecs`. Each ``register(name, factory)`` call adds a
component, and ``factory(**options)`` must return an object that follows one of the contracts
below. The contracts are duck-typed: a plugin need not import bench's classes, nor these
Protocols (they exist for type checkers and for the documentation).

The harness checks each contract once, early, and names the component when it is broken:

* right after a factory returns, :func:`check_component` (called by
  :meth:`bench.core.registry.Registry.build`) checks the type and the required attributes;
* on an encoder's first forward pass, :func:`check_features` (called by
  :class:`bench.model.dual_encoder.DualEncoder`) checks the output's shape and that it is finite;
* on a loss's first call, :func:`check_loss_value` checks that it returned a finite scalar.

Each broken contract is one :class:`bench.errors.ConfigError` line, e.g. ``audio encoder 'foo'
(plugin bar 1.0): factory returned str, expected a torch.nn.Module with sample_rate, embed_dim
and forward(waveforms, lengths)``.

No torch import at module level: ``bench ls`` imports the registry, which imports this module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bench.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch


@runtime_checkable
class AudioEncoder(Protocol):
    """A ``torch.nn.Module`` that maps waveforms to one vector per recording.

    ``waveforms`` is a float ``[B, T]`` tensor: mono, in [-1, 1], zero-padded, already resampled
    by the harness to ``sample_rate``; ``lengths`` is a long ``[B]`` tensor of valid samples. The
    output is ``[B, embed_dim]``. Optional attributes: ``pretrained: bool`` (trained at the
    pretrained learning rate; default False), ``crop_seconds: float`` (random training crop;
    default 10) and ``max_seconds: float`` (evaluation clips are cut there; default 30).
    """

    sample_rate: int
    embed_dim: int

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class TextEncoder(Protocol):
    """A ``torch.nn.Module`` that maps captions to ``[B, embed_dim]``.

    Tokenisation and moving the tokens to the module's device happen inside. Optional
    ``pretrained: bool``.
    """

    embed_dim: int

    def forward(self, captions: list[str]) -> torch.Tensor: ...


class Batch(Protocol):
    """What a loss receives besides the embeddings (bench's own is :class:`bench.data.batch.Batch`).

    ``audio_ids`` is a LongTensor ``[B]`` where equal ids mean the same recording. A loss with
    ``requires_teachers = True`` also finds ``teacher_audio`` and ``teacher_text``, both
    ``[M, B, D]`` (M stage-1 teachers); otherwise they are None.
    """

    audio_ids: torch.Tensor
    captions: list[str]
    teacher_audio: torch.Tensor | None
    teacher_text: torch.Tensor | None


@runtime_checkable
class Loss(Protocol):
    """A ``torch.nn.Module`` with ``forward(audio, text, batch) -> scalar tensor``.

    ``audio`` and ``text`` are the L2-normalised projected embeddings ``[B, D]``. Under DDP the
    harness gathers the global batch before calling the loss, so a loss never talks to
    ``torch.distributed``. A loss that needs stage-1 teachers sets ``requires_teachers = True``.
    """

    def forward(self, audio: torch.Tensor, text: torch.Tensor, batch: Batch) -> torch.Tensor: ...


@runtime_checkable
class Item(Protocol):
    """One recording: ``audio_id: str``, ``audio_path: str | os.PathLike`` and ``captions``."""

    audio_id: str
    audio_path: str | os.PathLike[str]
    captions: Sequence[str]


@runtime_checkable
class Dataset(Protocol):
    """An object whose ``split(name)``, for ``"train"``, ``"val"`` and ``"test"``, returns items.

    Optional: ``on_error`` (``"raise"`` or ``"skip"``), ``skipped(split)``, ``parse_warnings(split)``
    (usable entries worth a look, e.g. a repeated train row; listed and counted like validation
    warnings), and the metadata read when datasets are combined (``has_eval_splits``,
    ``contains_eval_audio_of``, ``leakage_excluded``, ``leakage_advice``; see :mod:`bench.hookspecs`).
    Items may carry ``source_captions``, the captions as the source file holds them before any
    cleaning (the ``dcase`` protocol keys on them; :class:`bench.data.items.Item`).
    """

    def split(self, name: str) -> Sequence[Item]: ...


@runtime_checkable
class RetrievalModel(Protocol):
    """A finished audio-text model with its own projections (``bench eval --model NAME``).

    ``embed_audio(waveforms, lengths)`` maps a float ``[B, T]`` CPU tensor (mono, in [-1, 1],
    zero-padded, resampled by the harness to ``sample_rate``) and a long ``[B]`` tensor of valid
    samples to ``[B, D]``; ``embed_text(captions)`` maps a list of strings to ``[B, D]``. Both in
    the same space (scores are dot products, so return normalised vectors for cosine agreement);
    the model moves inputs to its own device. Optional: ``max_seconds`` (the harness cuts clips
    there; default 30), ``stochastic: bool`` (embeddings depend on ``--seed``, e.g. random crops;
    the seed is then part of the embedding cache key), ``fingerprint: str`` (identifies weights
    and options for the embedding cache; an ``nn.Module`` without one is hashed, any other object
    is not cached) and ``describe() -> dict`` (what the result records about the model).
    """

    sample_rate: int

    def embed_audio(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor: ...

    def embed_text(self, captions: list[str]) -> torch.Tensor: ...


# -- checks ---------------------------------------------------------------------------------------
#: What each kind must be, in words, for the "expected ..." part of a message.
EXPECTED = {
    "audio_encoder": "a torch.nn.Module with sample_rate, embed_dim and forward(waveforms, lengths)",
    "text_encoder": "a torch.nn.Module with embed_dim and forward(captions)",
    "loss": "a torch.nn.Module with forward(audio, text, batch)",
    "dataset": "an object with split(name) returning items",
    "model": "an object with sample_rate, embed_audio(waveforms, lengths) and embed_text(captions)",
}
_MODULE_KINDS = ("audio_encoder", "text_encoder", "loss")


def component_label(kind: str, name: str, distribution: str | None = None, version: str | None = None) -> str:
    """``audio encoder 'cnn' (plugin bench 0.1.0)``: how messages name a component."""
    label = f"{kind.replace('_', ' ')} {name!r}"
    if distribution:
        label += f" (plugin {distribution}{' ' + version if version else ''})"
    return label


def _is_module(obj: Any) -> bool:
    # torch is imported only if a plugin already did (a factory that built a module has), so that
    # checking a dataset never costs a torch import.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def contract_problem(kind: str, obj: Any) -> str | None:
    """What is wrong with ``obj`` as a component of ``kind`` (None if nothing, or kind unknown)."""
    if kind not in EXPECTED:
        return None  # kinds added later (e.g. loggers) declare their own checks
    expected = EXPECTED[kind]
    if kind in _MODULE_KINDS and not _is_module(obj):
        return f"factory returned {type(obj).__name__}, expected {expected}"
    if kind == "dataset" and not callable(getattr(obj, "split", None)):
        return f"factory returned {type(obj).__name__} without a callable split(name), expected {expected}"
    if kind == "model":
        missing = [m for m in ("embed_audio", "embed_text") if not callable(getattr(obj, m, None))]
        if missing:
            return f"factory returned {type(obj).__name__} without a callable {missing[0]}, expected {expected}"
    required: dict[str, tuple[Any, str]] = {}
    if kind in ("audio_encoder", "model"):
        required["sample_rate"] = (_positive_int, "an int > 0 (Hz)")
    if kind in ("audio_encoder", "text_encoder"):
        required["embed_dim"] = (_positive_int, "an int > 0")
    for attr, (ok, words) in required.items():
        if not hasattr(obj, attr):
            return f"{type(obj).__name__} has no attribute {attr}; it must be {words}"
        if not ok(getattr(obj, attr)):
            return f"{attr}={getattr(obj, attr)!r} ({type(getattr(obj, attr)).__name__}); it must be {words}"
    optional: dict[str, tuple[Any, str]] = {}
    if kind == "audio_encoder":
        optional = {"crop_seconds": (_positive_number, "a number > 0"),
                    "max_seconds": (_positive_number, "a number > 0")}
    if kind == "model":
        optional = {"max_seconds": (_positive_number, "a number > 0"),
                    "stochastic": (lambda v: isinstance(v, bool), "True or False")}
    if kind in _MODULE_KINDS:
        optional["pretrained" if kind != "loss" else "requires_teachers"] = (
            lambda v: isinstance(v, bool), "True or False")
    for attr, (ok, words) in optional.items():
        value = getattr(obj, attr, None)
        if value is not None and not ok(value):
            return f"{attr}={value!r}; it must be {words}"
    return None


def check_component(kind: str, name: str, obj: Any, distribution: str | None = None, version: str | None = None) -> Any:
    """Return ``obj`` if it follows the contract of ``kind``, else raise a one-line ConfigError."""
    problem = contract_problem(kind, obj)
    if problem is not None:
        raise ConfigError(f"{component_label(kind, name, distribution, version)}: {problem}")
    return obj


def check_features(label: str, output: Any, batch_size: int, embed_dim: int) -> None:
    """An encoder's first output must be a finite ``[batch_size, embed_dim]`` tensor.

    ``label`` names the component (``audio encoder 'cnn'``). Costs one ``isfinite`` reduction,
    so callers run it once per encoder, on the first batch.
    """
    import torch

    if not isinstance(output, torch.Tensor):
        raise ConfigError(f"{label}: forward returned {type(output).__name__}, expected a tensor "
                          f"of shape ({batch_size}, {embed_dim}) = (batch, embed_dim)")
    if tuple(output.shape) != (batch_size, embed_dim):
        raise ConfigError(f"{label}: forward returned shape {tuple(output.shape)}, expected "
                          f"({batch_size}, {embed_dim}) = (batch, embed_dim)")
    if not output.is_floating_point():
        raise ConfigError(f"{label}: forward returned {output.dtype} values, expected floating point")
    if not bool(torch.isfinite(output.detach()).all()):
        raise ConfigError(f"{label}: forward returned NaN/inf values on its first batch")


def check_loss_value(label: str, value: Any) -> None:
    """A loss's first value must be a finite scalar tensor; ``label`` names it (``loss 'ntxent'``)."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise ConfigError(f"{label}: forward returned {type(value).__name__}, expected a scalar tensor")
    if value.dim() != 0:
        raise ConfigError(f"{label}: forward returned shape {tuple(value.shape)}, expected a scalar (shape ())")
    if not bool(torch.isfinite(value.detach())):
        raise ConfigError(f"{label}: forward returned {value.item()} on its first batch, expected a finite value")
