"""The one table of retrieval metrics: what bench reports, and how each metric is computed and shown.

Each :class:`Metric` entry of :data:`METRICS` holds the key (``"R@5"``), the direction that is
better, a label, how a value is formatted (a percentage with 2 decimals, or a rank with 1
decimal), how it is reduced from per-query ranks, and its expected value under a uniformly random
ranking (the chance level). Everything that lists metrics reads this table when it runs: the
reductions behind :mod:`bench.evaluation.metrics`, :func:`chance_metrics`, the result checker
(:mod:`bench.results.files`), and the leaderboard's columns and plots (:mod:`bench.leaderboard.tables`).
Adding R@50 is one line in :data:`METRICS`: ``recall(50)``.

The definitions (pessimistic ties; a2t R@k counts audio queries with at least one relevant
caption in the top k) are written out in ``docs/metrics.md``. They follow the DCASE
language-based audio retrieval task ("Language-based Audio Retrieval Task in DCASE 2022
Challenge", arXiv:2206.06108) on Clotho ("Clotho: An Audio Captioning Dataset", arXiv:1910.09387).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

import torch

from bench.evaluation.metric_inputs import MetricInputError
from bench.evaluation.ranks import MAP_CUTOFF, caption_table

DIRECTIONS: tuple[str, ...] = ("t2a", "a2t")
"""Text-to-audio (caption queries) and audio-to-text (audio queries), in table order."""

Reduce = Callable[[torch.Tensor, torch.Tensor], float]
"""``reduce(first, ap10)``: a metric from every query's 1-based first relevant position and AP@10."""


def format_percent(fraction: float, decimals: int = 2) -> str:
    """A fraction as a percentage string with ``decimals`` decimals: ``0.28934 -> "28.93"``."""
    return f"{100.0 * float(fraction):.{decimals}f}"


@dataclass(frozen=True)
class Metric:
    """One reported metric.

    ``directions``: where it is computed (and written into results). ``columns``: the directions
    shown as leaderboard columns. ``required``: every schema-1.0 result holds it, so the result
    checker insists on it; a metric added later is checked only where present, so older result
    files stay readable. ``chance_t2a(n_audios)`` and ``chance_a2t(n_captions, n_relevant)`` are
    exact expectations under a uniformly random ranking (for a2t, of one query; averaged over
    queries by :func:`chance_metrics`).
    """

    key: str
    label: str
    higher_is_better: bool
    kind: Literal["fraction", "rank"]
    directions: tuple[str, ...]
    columns: tuple[str, ...]
    required: bool
    reduce: Reduce
    chance_t2a: Callable[[int], Fraction]
    chance_a2t: Callable[[int, int], Fraction] | None = None

    def format(self, value: float) -> str:
        """The value as shown in tables: ``"28.93"`` (percent) or ``"12.5"`` (a rank)."""
        if self.kind == "fraction":
            return format_percent(value)
        return f"{float(value):.1f}"

    def cell(self, values: Sequence[float]) -> str:
        """One table cell: the value, or ``mean ± sample std`` of several seeds."""
        mean = statistics.fmean(values)
        if len(values) == 1:
            return self.format(mean)
        return f"{self.format(mean)} ± {self.format(statistics.stdev(values))}"

    def plot_value(self, value: float) -> float:
        """The number a plot draws: percent for fractions, the rank itself for ranks."""
        return 100.0 * float(value) if self.kind == "fraction" else float(value)

    @property
    def unit(self) -> str:
        return "%" if self.kind == "fraction" else ""


# ----------------------------------------------------------------------------- entries


def _mean(mask: torch.Tensor) -> float:
    return int(mask.sum()) / mask.numel()


def recall(k: int, *, required: bool = False, columns: tuple[str, ...] = ("t2a",)) -> Metric:
    """R@k: the fraction of queries with a relevant item in the top ``k`` (both directions)."""

    def chance_a2t(n_c: int, n_rel: int) -> Fraction:
        # Some relevant caption in the top k: 1 - P(all k drawn from the irrelevant ones).
        return 1 - Fraction(math.comb(n_c - n_rel, k), math.comb(n_c, k)) if k < n_c else Fraction(1)

    return Metric(
        key=f"R@{k}", label=f"recall at {k}", higher_is_better=True, kind="fraction", directions=DIRECTIONS,
        columns=columns, required=required, reduce=lambda first, _ap: _mean(first <= k),
        chance_t2a=lambda n: Fraction(min(k, n), n), chance_a2t=chance_a2t,
    )


def _map_chance_t2a(n: int) -> Fraction:
    # The relevant audio's rank is uniform on 1..n.
    return sum((Fraction(1, r) for r in range(1, min(MAP_CUTOFF, n) + 1)), Fraction(0)) / n


def _map_chance_a2t(n_c: int, n_rel: int) -> Fraction:
    # Position i is relevant with probability n_rel/n_c; given that, each of the i - 1 positions
    # above it is relevant with probability (n_rel - 1)/(n_c - 1) (linearity of expectation).
    ap = Fraction(0)
    for i in range(1, min(MAP_CUTOFF, n_c) + 1):
        above = Fraction((i - 1) * (n_rel - 1), n_c - 1) if i > 1 else Fraction(0)
        ap += Fraction(n_rel, n_c) * (1 + above) / i
    return ap / min(n_rel, MAP_CUTOFF)


def _median(first: torch.Tensor, _ap: torch.Tensor) -> float:
    # The median of an even number of ranks is the mean of the two middle ones (numpy.median).
    srt = first.sort().values
    n, mid = first.numel(), first.numel() // 2
    return float(srt[mid]) if n % 2 else (int(srt[mid - 1]) + int(srt[mid])) / 2


MAP10 = Metric(
    key=f"mAP@{MAP_CUTOFF}", label=f"mean average precision at {MAP_CUTOFF}", higher_is_better=True,
    kind="fraction", directions=DIRECTIONS, columns=DIRECTIONS, required=True,
    reduce=lambda _first, ap: float(ap.sum()) / ap.numel(),
    chance_t2a=_map_chance_t2a, chance_a2t=_map_chance_a2t,
)

METRICS: tuple[Metric, ...] = (
    recall(1, required=True),
    recall(5, required=True),
    recall(10, required=True),
    MAP10,
    Metric(key="mean_rank", label="mean rank", higher_is_better=False, kind="rank", directions=("t2a",),
           columns=(), required=False, reduce=lambda first, _ap: float(first.sum()) / first.numel(),
           chance_t2a=lambda n: Fraction(n + 1, 2)),
    Metric(key="median_rank", label="median rank", higher_is_better=False, kind="rank", directions=("t2a",),
           columns=(), required=False, reduce=_median, chance_t2a=lambda n: Fraction(n + 1, 2)),
)
"""Every reported metric, in the order results and tables list them."""

PRIMARY: tuple[str, str] = ("t2a", MAP10.key)
"""The headline metric: leaderboards sort by it, plots draw it, the best checkpoint maximises it."""


# ----------------------------------------------------------------------------- lookups (read the table now)


def metrics(direction: str | None = None) -> tuple[Metric, ...]:
    """The table's entries, all or those computed for ``direction``."""
    return tuple(m for m in METRICS if direction is None or direction in m.directions)


def keys(direction: str) -> tuple[str, ...]:
    """The metric keys of one direction, in table order."""
    return tuple(m.key for m in metrics(direction))


def get(key: str) -> Metric:
    """The entry for ``key`` (``KeyError`` naming the known keys if there is none)."""
    for metric in METRICS:
        if metric.key == key:
            return metric
    raise KeyError(f"no metric {key!r}; known: {', '.join(m.key for m in METRICS)}")


def column_name(direction: str, metric: Metric) -> str:
    return f"{direction} {metric.key}"


def leaderboard_columns() -> list[tuple[str, Metric]]:
    """``(direction, metric)`` per leaderboard column: per direction the primary metric, then the rest."""
    out = []
    for direction in DIRECTIONS:
        shown = [m for m in metrics(direction) if direction in m.columns]
        shown.sort(key=lambda m: m.key != PRIMARY[1])  # stable: the primary first, then table order
        out.extend((direction, m) for m in shown)
    return out


# ----------------------------------------------------------------------------- reductions and chance


def summarise_t2a(ranks: torch.Tensor) -> dict[str, float]:
    """Text-to-audio metrics from the 1-based ranks of all caption queries."""
    r = torch.as_tensor(ranks).long().flatten().cpu()
    if r.numel() == 0:
        raise MetricInputError("no caption queries: the metrics of an empty set are undefined")
    # A caption has one relevant audio, so its AP@10 is the reciprocal rank within the cut-off.
    ap = torch.where(r <= MAP_CUTOFF, 1.0 / r.double(), torch.zeros((), dtype=torch.float64))
    return {m.key: m.reduce(r, ap) for m in metrics("t2a")}


def summarise_a2t(first_position: torch.Tensor, ap10: torch.Tensor) -> dict[str, float]:
    """Audio-to-text metrics from per-query first relevant positions and AP@10."""
    f = torch.as_tensor(first_position).long().flatten().cpu()
    ap = torch.as_tensor(ap10).double().flatten().cpu()
    n = f.numel()
    if n == 0:
        raise MetricInputError("no audio queries: the metrics of an empty set are undefined")
    if ap.numel() != n:
        raise MetricInputError(f"{n} first positions but {ap.numel()} AP values")
    return {m.key: m.reduce(f, ap) for m in metrics("a2t")}


def chance_metrics(audio_of_caption: Any, n_audios: int) -> dict[str, dict[str, float]]:
    """Expected metrics of a uniformly random ranking (every order of the items equally likely).

    Exact rational arithmetic from each entry's closed form, not a simulation. t2a depends on
    ``n_audios`` only; a2t is the mean over audio queries of the per-query expectation, which
    depends on the number of captions and the query's number of relevant ones. Every audio needs
    at least one caption (the a2t queries).
    """
    if isinstance(n_audios, bool) or not isinstance(n_audios, int) or n_audios < 1:
        raise MetricInputError(f"n_audios must be a positive integer, got {n_audios!r}")
    table = caption_table(audio_of_caption, n_audios)
    n_c = int(table.counts.sum())
    t2a = {m.key: float(m.chance_t2a(n_audios)) for m in metrics("t2a")}
    values, multiplicity = torch.unique(table.counts, return_counts=True)
    groups = list(zip(values.tolist(), multiplicity.tolist()))
    a2t = {}
    for m in metrics("a2t"):
        if m.chance_a2t is None:
            raise MetricInputError(f"metric {m.key} is computed for a2t but has no a2t chance level")
        total = sum((mult * m.chance_a2t(n_c, n_rel) for n_rel, mult in groups), Fraction(0))
        a2t[m.key] = float(total / n_audios)
    return {"t2a": t2a, "a2t": a2t}
