"""Checkpoint I/O: atomic saves and ``weights_only`` loads that fail with one line.

A checkpoint holds only what cannot be rebuilt: frozen pretrained encoders are left out and
rebuilt identically by their factories (:func:`trainable_state`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.atomic import atomic_path
from bench.errors import ConfigError
from bench.model import is_frozen

CHECKPOINT_VERSION = 1


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write ``obj`` so that a reader never sees half a file, even if the process is killed."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no pickled code runs); one-line error if unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise ConfigError(f"{path}: cannot read checkpoint ({exc}); delete it to start the run again") from None


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state minus frozen pretrained encoders, which the factory rebuilds identically."""
    skip = [prefix for prefix, enc in (("audio_encoder.", model.audio_encoder), ("text_encoder.", model.text_encoder))
            if is_frozen(enc) and getattr(enc, "pretrained", False)]
    return {k: v for k, v in model.state_dict().items() if not any(k.startswith(p) for p in skip)}


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``; only the frozen pretrained towers may be missing from it."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    allowed = set(model.state_dict()) - set(trainable_state(model))
    missing = [k for k in missing if k not in allowed]
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ConfigError(f"{source}: checkpoint does not fit this model ({detail}); "
                          "were the encoders or options changed?")
