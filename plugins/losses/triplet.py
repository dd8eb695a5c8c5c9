"""Built-in loss ``triplet``: max-margin triplet loss with negative sampling (SPEC §3, seed 001)."""

from __future__ import annotations

from typing import Any

from bench import hookimpl
from bench_plugins.losses import _options

NEGATIVES = ("random", "full", "semihard", "hard")


@hookimpl
def register_losses(register: Any) -> None:
    """Register ``triplet``."""
    register("triplet", build_triplet)


def build_triplet(margin: float = 0.2, negatives: str = "hard") -> Any:
    """Build the triplet loss.

    ``margin``: hinge margin on cosine scores (0.2, the usual VSE++ value). ``negatives``: one of
    ``random`` (one uniform negative per anchor and direction, drawn from the global torch RNG),
    ``full`` (mean hinge over all negatives), ``semihard`` (the negative whose score is closest,
    in absolute value, to the positive's) or ``hard`` (the highest-scoring negative). Negatives
    are batch items of a different recording; both directions (audio and caption anchors) are
    summed per anchor.
    """
    margin = _options.nonnegative_float("triplet", "margin", margin)
    negatives = _options.choice("triplet", "negatives", negatives, NEGATIVES)
    from bench_plugins.losses._impl import TripletLoss

    return TripletLoss(margin=margin, negatives=negatives)
