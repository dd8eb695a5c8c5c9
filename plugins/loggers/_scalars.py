"""Flattening a run's numbers into ``name -> float`` scalars, shared by the dashboard loggers."""

from __future__ import annotations

from typing import Any


def flatten(prefix: str, value: Any) -> dict[str, float]:
    """``("val", {"t2a": {"mAP@10": 0.3}})`` -> ``{"val/t2a/mAP@10": 0.3}``; non-numbers are dropped."""
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for key, item in value.items():
            out.update(flatten(f"{prefix}/{key}", item))
        return out
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return {}
    return {prefix: float(value)}


def epoch_scalars(train_loss: float, lr: list[float], val: dict[str, Any],
                  timings: dict[str, float]) -> dict[str, float]:
    """The scalars of one epoch: ``train/loss``, ``lr/group0``, ``val/t2a/mAP@10``, ``time/epoch_s``."""
    scalars = {"train/loss": float(train_loss)}
    scalars.update({f"lr/group{i}": float(v) for i, v in enumerate(lr)})
    scalars.update(flatten("val", val))
    scalars.update(flatten("time", timings))
    return scalars
