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

**Paired randomisation test** (:func:`paired_test`, :func:`permutation_p_value`). Under the null
the two systems' outcomes on each query are exchangeable, so the test swaps the pair on each query:
for the mean-type metrics that flips the sign of the per-query difference ``d = a - b`` and the
statistic ``stat(A) - stat(B)`` becomes ``mean(s * d)`` for a sign vector ``s``. Exact (all 2^n sign
vectors) when ``2^n <= n_resamples``, else ``n_resamples`` (default 10,000) random sign vectors from
``numpy.random.default_rng(seed)`` (random bytes, 8 queries each), reduced in batches by table look-up. Two-sided,
with the same counting rule as ``scipy.stats.permutation_test`` (``permutation_type='samples'``):
``p = min(1, 2 * min(P(T <= t), P(T >= t)))`` with a relative tie tolerance of 100 machine epsilons
and, for random flips, the ``(count + 1) / (n_resamples + 1)`` correction (Phipson & Smyth, "Permutation
P-values should never be zero", 2010). Statistics other than the mean (the median) swap the pair values
themselves. It replaces ``scipy.stats.permutation_test``, which computed the same test per resample
batch in Python and took 0.5-2 s per comparison of a few thousand queries. Optionally a paired t-test (``scipy.stats.
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


def _flip_batches(n: int, n_resamples: int, seed: int) -> tuple[Any, int, bool]:
    """Batches of sign-flip masks packed 8 queries to a byte (bit set = swap the pair), their total
    count, and whether they are exhaustive. Bits past ``n`` in the last byte are zero."""
    exact = n < 63 and 2**n <= n_resamples
    n_bytes = (n + 7) // 8
    rows = max(1, _BATCH_ELEMENTS // n_bytes)
    if exact:
        total = 2**n
        shifts = 8 * np.arange(n_bytes, dtype=np.int64)

        def every() -> Any:
            for start in range(0, total, rows):
                codes = np.arange(start, min(total, start + rows), dtype=np.int64)
                yield ((codes[:, None] >> shifts) & 0xFF).astype(np.uint8)

        return every(), total, True
    rng = np.random.default_rng(seed)
    tail = np.uint8((1 << (n - 8 * (n_bytes - 1))) - 1)

    def sampled() -> Any:
        for start in range(0, n_resamples, rows):
            packed = rng.integers(0, 256, size=(min(rows, n_resamples - start), n_bytes), dtype=np.uint8)
            packed[:, -1] &= tail  # each query flipped with probability 1/2, padding never
            yield packed

    return sampled(), n_resamples, False


def _flipped_sums(d: np.ndarray, flips: Any) -> np.ndarray:
    """``sum(s * d)`` for every packed flip mask: a gather from per-byte tables of partial sums.

    ``table[j, v]`` is the sum of ``d`` over the queries of byte ``j`` whose bit is set in ``v``, so
    a resample costs ``n / 8`` look-ups instead of ``n`` multiply-adds, and a flip of queries whose
    difference is 0 gives exactly the same sum (the tie rule depends on it).
    """
    n_bytes = (d.size + 7) // 8
    padded = np.zeros(8 * n_bytes)
    padded[: d.size] = d
    bits = (np.arange(256)[:, None] >> np.arange(8)) & 1  # [256, 8]
    table = np.where(bits[None, :, :] == 1, padded.reshape(n_bytes, 1, 8), 0.0).sum(axis=-1)  # [bytes, 256]
    total = d.sum()
    columns = np.arange(n_bytes)
    return np.concatenate([total - 2.0 * table[columns, packed].sum(axis=1) for packed in flips])


def _swapped_statistics(a: np.ndarray, b: np.ndarray, statistic: Statistic, flips: Any) -> np.ndarray:
    """``stat(A') - stat(B')`` for every packed flip mask, swapping the pair values (any statistic)."""
    parts = []
    for packed in flips:
        mask = np.unpackbits(packed, axis=1, count=a.size, bitorder="little").astype(bool)
        parts.append(statistic(np.where(mask, b, a), axis=-1) - statistic(np.where(mask, a, b), axis=-1))
    return np.concatenate(parts)


def permutation_p_value(
    a: np.ndarray, b: np.ndarray, statistic: Statistic = _mean, *, n_resamples: int = N_PERMUTATIONS, seed: int = 0
) -> tuple[float, bool]:
    """Two-sided p-value of the paired randomisation (sign-flip) test; ``(p, exact)``.

    The observed statistic is computed by the same reduction as the null values (as the first
    row of the first batch), so a flip that changes nothing ties with it exactly.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if np.array_equal(a, b):
        return 1.0, True  # every flip leaves the statistic at 0: p = 1 exactly
    n = a.size
    flips, total, exact = _flip_batches(n, n_resamples, seed)

    def with_identity() -> Any:
        first = next(flips)
        yield np.vstack([np.zeros((1, first.shape[1]), dtype=np.uint8), first])
        yield from flips

    if statistic is _mean:
        values = _flipped_sums(a - b, with_identity()) / n
    else:
        values = _swapped_statistics(a, b, statistic, with_identity())
    observed, null = values[0], values[1:]
    gamma = abs(observed) * np.finfo(np.float64).eps * 100
    adjustment = 0 if exact else 1
    less = (np.count_nonzero(null <= observed + gamma) + adjustment) / (total + adjustment)
    greater = (np.count_nonzero(null >= observed - gamma) + adjustment) / (total + adjustment)
    return float(min(1.0, 2.0 * min(less, greater))), exact


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
