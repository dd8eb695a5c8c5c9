"""Built-in loss ``distill``: ensemble distillation from stage-1 teachers.

Primus et al., "Estimated Audio-Caption Correspondences Improve Language-Based Audio Retrieval",
arXiv:2408.11641.
"""

from __future__ import annotations

from typing import Annotated, Any

from bench import hookimpl
from bench.options import Ge, Gt


@hookimpl
def register_losses(register: Any) -> None:
    """Register ``distill``."""
    register("distill", build_distill)


def build_distill(w_sup: Annotated[float, Ge(0)] = 0.0, w_dist: Annotated[float, Ge(0)] = 1.0,
                  tau: Annotated[float, Gt(0)] = 0.05, stage1_loss: str = "ntxent") -> Any:
    """Build the distillation loss ``w_sup * L_ntxent + w_dist * L_dist``.

    ``tau`` is both the student's and the teachers' temperature. The loss reads
    ``batch.teacher_audio`` / ``batch.teacher_text`` ([M, B, D]); it has
    ``requires_teachers = True``. ``stage1_loss`` names the loss of the stage-1 run that
    ``bench run --loss distill`` trains when no ``--teachers`` are given (bench.runs.distill).
    """
    from bench_plugins.losses._impl import DistillLoss

    loss = DistillLoss(w_sup=w_sup, w_dist=w_dist, tau=tau)
    loss.stage1_loss = stage1_loss
    return loss
