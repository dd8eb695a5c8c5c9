"""Built-in loss ``triplet``: max-margin triplet loss with negative sampling.

From "On Negative Sampling for Contrastive Audio-Text Retrieval", arXiv:2211.04070.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from bench import hookimpl
from bench.options import Ge

Negatives = Literal["random", "full", "semihard", "hard"]
NEGATIVES = get_args(Negatives)


@hookimpl
def register_losses(register: Any) -> None:
    """Register ``triplet``."""
    register("triplet", build_triplet)


def build_triplet(margin: Annotated[float, Ge(0)] = 0.2, negatives: Negatives = "hard") -> Any:
    """Build the triplet loss.

    ``margin``: hinge margin on cosine scores (0.2, the usual VSE++ value). ``negatives``: one of
    ``random`` (one uniform negative per anchor and direction, drawn from the global torch RNG),
    ``full`` (mean hinge over all negatives), ``semihard`` (the negative whose score is closest,
    in absolute value, to the positive's) or ``hard`` (the highest-scoring negative). Negatives
    are batch items of a different recording; both directions (audio and caption anchors) are
    summed per anchor. The registry checks the values against these annotations.
    """
    from bench_plugins.losses._impl import TripletLoss

    return TripletLoss(margin=margin, negatives=negatives)
