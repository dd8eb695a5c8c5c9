"""Built-in loss ``distill``: ensemble distillation from stage-1 teachers (SPEC §3, seed 003)."""

from __future__ import annotations

from typing import Any

from bench import hookimpl
from bench_plugins.losses import _options


@hookimpl
def register_losses(register: Any) -> None:
    """Register ``distill``."""
    register("distill", build_distill)


def build_distill(w_sup: float = 0.0, w_dist: float = 1.0, tau: float = 0.05) -> Any:
    """Build the distillation loss ``w_sup * L_ntxent + w_dist * L_dist``.

    ``tau`` is both the student's and the teachers' temperature. The loss reads
    ``batch.teacher_audio`` / ``batch.teacher_text`` ([M, B, D]); it has
    ``requires_teachers = True``.
    """
    w_sup = _options.nonnegative_float("distill", "w_sup", w_sup)
    w_dist = _options.nonnegative_float("distill", "w_dist", w_dist)
    tau = _options.positive_float("distill", "tau", tau)
    from bench_plugins.losses._impl import DistillLoss

    return DistillLoss(w_sup=w_sup, w_dist=w_dist, tau=tau)
