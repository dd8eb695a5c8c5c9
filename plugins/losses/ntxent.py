"""Built-in loss ``ntxent``: symmetric InfoNCE with same-recording positives (docs/losses.md)."""

from __future__ import annotations

from typing import Annotated, Any

from bench import hookimpl
from bench.options import Gt


@hookimpl
def register_losses(register: Any) -> None:
    """Register ``ntxent``."""
    register("ntxent", build_ntxent)


def build_ntxent(tau: Annotated[float, Gt(0)] = 0.05, learnable_tau: bool = False) -> Any:
    """Build the NT-Xent loss.

    ``tau``: temperature dividing the cosine scores (salsa: 0.05). ``learnable_tau``: learn
    log(1/tau) starting from ``tau``, clamped to tau in [0.01, 1]; the optimiser must include the
    loss's parameters. The registry checks the values against these annotations
    (:mod:`bench.options`).
    """
    from bench_plugins.losses._impl import NTXentLoss

    return NTXentLoss(tau=tau, learnable_tau=learnable_tau)
