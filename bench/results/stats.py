"""Confidence intervals and paired significance tests over queries.

Following IR practice (Smucker, Allan & Carterette, "A comparison of statistical significance
tests for information retrieval evaluation", CIKM 2007), the unit of sampling is the query: a
test split is one sample of queries, and the question is how much a metric would move on another
sample of the same kind.

**Per-query values.** Every metric bench reports is a statistic of one per-query vector
(:func:`metric_values`): R@k is the mean of ``rank <= k``, mAP@10 the mean of the per-query
(A)P@10 (``1/rank`` within the cut-off for t2a), mean_rank the mean rank and median_rank the
median rank.

**Bootstrap CI** (:func:`bootstrap_ci`). ``scipy.stats.bootstrap`` with the *percentile* method,
``n_resamples`` (default 2000) resamples of queries with replacement, seeded. Percentile rather
than BCa because BCa needs a jackknife over all n queries, O(n^2) work (prohibitive at 100k
captions), and it degenerates on the discrete, tie-heavy values (indicators, ranks) of retrieval.

**Several seeds** (:func:`seeds_ci`). Per-query values of the S seed runs are aligned by query;
the point estimate is the mean over seeds of each seed's metric. Query variance: the queries are
bootstrapped *paired across seeds* (one resample of query indices applied to every seed), and the
statistic is the mean over seeds of the per-seed metric -- for the mean-type metrics this is the
bootstrap of the seed-averaged per-query outcome. Seed variance: ``seed_sd``, the sample standard
deviation of the S per-seed metrics. The combined interval adds the seed term in quadrature to
each side of the query interval: ``e = t_{0.975, S-1} * seed_sd / sqrt(S)``,
``low = point - sqrt((point - q_low)^2 + e^2)``, ``high = point + sqrt((q_high - point)^2 + e^2)``
(training noise and query sampling are independent, so their variances add).

**Paired randomisation test** (:func:`paired_test`). ``scipy.stats.permutation_test`` with
``permutation_type='samples'``: under the null the two systems' outcomes on each query are
exchangeable, so the test flips the pair on each query (2^n sign flips of the differences);
exact when ``2^n <= n_resamples``, else ``n_resamples`` (default 10,000) random flips, seeded.
Two-sided; the statistic is ``stat(A) - stat(B)``. Optionally a paired t-test (``scipy.stats.
ttest_rel``) on the per-query values. :func:`holm` adjusts p-values for multiple comparisons
(Holm, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 1979).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from bench.evaluation.metric_table import DIRECTIONS
from bench.evaluation.metric_table import metrics as table_metrics
from bench.evaluation.per_query import Outcomes
from bench.evaluation.ranks import MAP_CUTOFF

CONFIDENCE = 0.95
N_BOOTSTRAP = 2000
N_PERMUTATIONS = 10_000
ALPHA = 0.05
CI_METHOD = "percentile"
TEST_NAME = "paired randomisation test"

_BATCH_ELEMENTS = 1 << 22  # resamples x queries held at once by scipy (about 32 MB of float64)

Statistic = Callable[..., Any]


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(x, axis=axis)


def _per_query(key: str, first: np.ndarray, ap: np.ndarray) -> tuple[np.ndarray, Statistic] | None:
    """The per-query decomposition of one metric of the table, or None if it has none."""
    if key.startswith("R@") and key[2:].isdigit():
        return (first <= int(key[2:])).astype(np.float64), _mean
    if key == f"mAP@{MAP_CUTOFF}":
        return ap, _mean
    if key == "mean_rank":
        return first, _mean
    if key == "median_rank":
        return first, _median
    return None


def metric_values(outcomes: Outcomes) -> dict[tuple[str, str], tuple[np.ndarray, Statistic]]:
    """``{(direction, metric): (per-query values float64, statistic)}`` for the metric table's entries.

    ``statistic(values, axis=-1)`` applied to the values gives the metric (up to float rounding
    of the summation order; the exact figures come from :func:`bench.evaluation.per_query.reduce`). The
    keys follow :mod:`bench.evaluation.metric_table`, so a metric added there (say R@50) appears here too.
    """
    r = np.asarray(outcomes.t2a_rank, dtype=np.float64)
    per_direction = {
        "t2a": (r, np.where(r <= MAP_CUTOFF, 1.0 / r, 0.0)),  # one relevant item: AP@10 = 1/rank in the cut-off
        "a2t": (np.asarray(outcomes.a2t_first, dtype=np.float64), np.asarray(outcomes.a2t_ap10, dtype=np.float64)),
    }
    out: dict[tuple[str, str], tuple[np.ndarray, Statistic]] = {}
    for direction in DIRECTIONS:
        for metric in table_metrics(direction):
            found = _per_query(metric.key, *per_direction[direction])
            if found is not None:
                out[(direction, metric.key)] = found
    return out


def _rng_kwargs(func: Callable[..., Any], seed: int) -> dict[str, Any]:
    # scipy >= 1.15 takes rng=; older releases (bench supports scipy >= 1.10) take random_state=.
    name = "rng" if "rng" in inspect.signature(func).parameters else "random_state"
    return {name: np.random.default_rng(seed)}


def _batch(n: int) -> int:
    return max(1, _BATCH_ELEMENTS // max(1, n))


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval (same units as the values)."""

    point: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def bootstrap_ci(
    values: np.ndarray,
    statistic: Statistic = _mean,
    *,
    n_resamples: int = N_BOOTSTRAP,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap CI of ``statistic`` over queries (``scipy.stats.bootstrap``, seeded)."""
    values = np.asarray(values, dtype=np.float64)
    point = float(statistic(values, axis=-1))
    if values.size < 2 or np.all(values == values[0]):
        return Interval(point, point, point)  # nothing to resample: every resample is the same
    res = sps.bootstrap(
        (values,), statistic, n_resamples=n_resamples, confidence_level=confidence, method=CI_METHOD,
        vectorized=True, axis=-1, batch=_batch(values.size), **_rng_kwargs(sps.bootstrap, seed),
    )
    return Interval(point, float(res.confidence_interval.low), float(res.confidence_interval.high))


@dataclass(frozen=True)
class SeedInterval:
    """Mean over seeds, the query-bootstrap CI, the seed spread and the combined CI."""

    point: float
    query_low: float
    query_high: float
    seed_sd: float
    n_seeds: int
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def seeds_ci(
    per_seed_values: list[np.ndarray],
    statistic: Statistic = _mean,
    *,
    n_resamples: int = N_BOOTSTRAP,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> SeedInterval:
    """CI of the mean over seeds accounting for query sampling and seed spread (module docstring)."""
    data = [np.asarray(v, dtype=np.float64) for v in per_seed_values]
    if not data or any(v.shape != data[0].shape for v in data):
        raise ValueError("seeds_ci needs one aligned per-query vector per seed, all the same length")
    per_seed = np.array([float(statistic(v, axis=-1)) for v in data])
    point = float(per_seed.mean())
    s = len(data)

    def mean_over_seeds(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean([statistic(x, axis=axis) for x in xs], axis=0)

    stacked = np.stack(data)
    if data[0].size < 2 or np.all(stacked == stacked.flat[0]):
        q_low = q_high = point
    else:
        res = sps.bootstrap(
            tuple(data), mean_over_seeds, paired=True, n_resamples=n_resamples, confidence_level=confidence,
            method=CI_METHOD, vectorized=True, axis=-1, batch=_batch(data[0].size * s),
            **_rng_kwargs(sps.bootstrap, seed),
        )
        q_low, q_high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    sd = float(per_seed.std(ddof=1)) if s > 1 else 0.0
    e = float(sps.t.ppf(0.5 + confidence / 2, s - 1)) * sd / math.sqrt(s) if s > 1 else 0.0
    low = point - math.sqrt((point - q_low) ** 2 + e**2)
    high = point + math.sqrt((q_high - point) ** 2 + e**2)
    return SeedInterval(point, q_low, q_high, sd, s, low, high)


@dataclass(frozen=True)
class PairedResult:
    """``stat(A) - stat(B)`` with its bootstrap CI and the two-sided p-values."""

    difference: float
    low: float
    high: float
    p_value: float
    exact: bool
    t_p_value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _difference_statistic(statistic: Statistic) -> Statistic:
    def diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return statistic(x, axis=axis) - statistic(y, axis=axis)

    return diff


def permutation_p_value(
    a: np.ndarray, b: np.ndarray, statistic: Statistic = _mean, *, n_resamples: int = N_PERMUTATIONS, seed: int = 0
) -> tuple[float, bool]:
    """Two-sided p-value of the paired randomisation test; ``(p, exact)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if np.array_equal(a, b):
        return 1.0, True  # every flip leaves the statistic at 0: p = 1 exactly
    n = a.size
    exact = n < 63 and 2**n <= n_resamples
    res = sps.permutation_test(
        (a, b), _difference_statistic(statistic), permutation_type="samples", n_resamples=n_resamples,
        alternative="two-sided", vectorized=True, axis=-1, batch=_batch(n),
        **_rng_kwargs(sps.permutation_test, seed),
    )
    return float(res.pvalue), exact


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    statistic: Statistic = _mean,
    *,
    n_permutations: int = N_PERMUTATIONS,
    n_bootstrap: int = N_BOOTSTRAP,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    t_test: bool = False,
) -> PairedResult:
    """Difference ``stat(a) - stat(b)`` of aligned per-query values: paired bootstrap CI and p-values."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired values must be two 1-D arrays of one length, got {a.shape} and {b.shape}")
    diff_stat = _difference_statistic(statistic)
    point = float(diff_stat(a, b))
    if np.array_equal(a, b):
        return PairedResult(0.0, 0.0, 0.0, 1.0, True, 1.0 if t_test else None)
    res = sps.bootstrap(
        (a, b), diff_stat, paired=True, n_resamples=n_bootstrap, confidence_level=confidence, method=CI_METHOD,
        vectorized=True, axis=-1, batch=_batch(2 * a.size), **_rng_kwargs(sps.bootstrap, seed),
    )
    p, exact = permutation_p_value(a, b, statistic, n_resamples=n_permutations, seed=seed)
    t_p = None
    if t_test:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # constant differences: t undefined
            t_p = float(sps.ttest_rel(a, b).pvalue)
        t_p = 1.0 if math.isnan(t_p) else t_p
    return PairedResult(point, float(res.confidence_interval.low), float(res.confidence_interval.high), p, exact, t_p)


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p-values (step-down, monotone, capped at 1), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def metric_cis(
    per_seed: list[Outcomes], *, n_resamples: int = N_BOOTSTRAP, confidence: float = CONFIDENCE, seed: int = 0
) -> dict[str, dict[str, dict[str, float]]]:
    """``{direction: {metric: {point, low, high, ...}}}`` for one run (one outcomes) or a seed group.

    One run: :func:`bootstrap_ci`. Several seeds (aligned): :func:`seeds_ci`, whose ``low``/``high``
    are the combined interval. This is what a result JSON or the leaderboard records as a CI.
    """
    if not per_seed:
        raise ValueError("metric_cis needs the outcomes of at least one run")
    values = [metric_values(o) for o in per_seed]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (direction, key), (_, statistic) in values[0].items():
        runs = [v[(direction, key)][0] for v in values]
        if len(runs) == 1:
            ci: Any = bootstrap_ci(runs[0], statistic, n_resamples=n_resamples, confidence=confidence, seed=seed)
        else:
            ci = seeds_ci(runs, statistic, n_resamples=n_resamples, confidence=confidence, seed=seed)
        out.setdefault(direction, {})[key] = ci.as_dict()
    return out


def format_ci(point: float, low: float, high: float, scale: float = 100.0, decimals: int = 2) -> str:
    """The one compact CI form bench prints: ``"31.25 [30.40, 32.10]"`` (percent for fractions)."""
    return f"{point * scale:.{decimals}f} [{low * scale:.{decimals}f}, {high * scale:.{decimals}f}]"


__all__ = [
    "ALPHA", "CI_METHOD", "CONFIDENCE", "N_BOOTSTRAP", "N_PERMUTATIONS", "TEST_NAME", "Interval",
    "PairedResult", "SeedInterval", "bootstrap_ci", "format_ci", "holm", "metric_cis", "metric_values", "paired_test",
    "permutation_p_value", "seeds_ci",
]
