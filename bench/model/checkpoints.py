"""Checkpoint I/O: atomic saves and ``weights_only`` loads that fail with one line.

A checkpoint holds only what cannot be rebuilt: frozen pretrained encoders are left out and
rebuilt identically by their factories (:func:`trainable_state`).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.core.atomic import atomic_path
from bench.errors import ConfigError
from bench.model.dual_encoder import is_frozen

CHECKPOINT_VERSION = 1


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write ``obj`` so that a reader never sees half a file, even if the process is killed."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


# What a resumable ``last.pt`` must hold beyond the model weights (see Trainer.save_last).
RESUME_KEYS = ("loss", "optimizer", "scaler", "epoch", "best", "history")
_ADVICE = "delete it to start that run again, or point --init/--resume at another run"


def _why_unreadable(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    low = text.lower()
    if isinstance(exc, pickle.UnpicklingError) and "weights only load failed" in low:
        return ("refused by weights-only loading: it holds pickled objects or code, not just tensors "
                "(bench never runs code from a checkpoint)")
    if isinstance(exc, EOFError) or "central directory" in low or "zip archive" in low:
        return "truncated or damaged (not a complete torch save)"
    if isinstance(exc, (pickle.UnpicklingError, KeyError, ValueError, UnicodeDecodeError)):
        return "not a checkpoint file (not written by torch.save)"
    if isinstance(exc, OSError):
        return f"cannot be read ({exc.strerror or text})"
    return f"cannot be read ({type(exc).__name__}: {text[:160]})"


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no pickled code runs); one-line error if unusable.

    The error names the file and says what was wrong: truncated, not a checkpoint at all, refused
    by weights-only loading (a hostile or foreign pickle), or a torch file that is not one of
    bench's checkpoints (no ``model`` weights; for ``last.pt`` also the optimizer/epoch state).
    """
    try:
        with open(path, "rb") as handle:
            magic = handle.read(2)
    except OSError as exc:
        raise ConfigError(f"{path}: unusable checkpoint, {_why_unreadable(exc)}; {_ADVICE}") from None
    if not magic:
        raise ConfigError(f"{path}: unusable checkpoint, empty file (0 bytes); {_ADVICE}")
    if magic != b"PK" and magic[:1] != b"\x80":  # torch.save writes a zip (or, legacy, a pickle)
        raise ConfigError(f"{path}: unusable checkpoint, not a checkpoint file (not written by torch.save); {_ADVICE}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for bad input; all mean "unusable file"
        raise ConfigError(f"{path}: unusable checkpoint, {_why_unreadable(exc)}; {_ADVICE}") from None
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise ConfigError(f"{path}: not a checkpoint of bench (no 'model' weights; found "
                          f"{type(state).__name__}); {_ADVICE}")
    if Path(path).name == "last.pt":
        missing = [key for key in RESUME_KEYS if key not in state]
        if missing:
            raise ConfigError(f"{path}: not a resumable checkpoint of bench (missing {', '.join(missing)}); {_ADVICE}")
    return state


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
