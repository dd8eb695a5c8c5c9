"""bench.results.stats held against brute force and against scipy called directly."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from bench.evaluation.per_query import outcomes_from_scores, reduce
from bench.results import stats


def brute_force_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided paired randomisation p-value by enumerating all 2^n swaps: P(|T| >= |t|)."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    observed = abs(d.mean())
    hits = 0
    total = 0
    for signs in itertools.product((1.0, -1.0), repeat=d.size):
        total += 1
        hits += abs((d * np.asarray(signs)).mean()) >= observed - 1e-12
    return hits / total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permutation_p_value_equals_brute_force_enumeration(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 20, 10).astype(float)  # e.g. ranks of 10 queries under two systems
    b = a + rng.integers(-3, 6, 10)
    p, exact = stats.permutation_p_value(a, b)
    assert exact
    assert p == pytest.approx(brute_force_p(a, b), abs=1e-12)


def test_permutation_p_value_on_continuous_values():
    rng = np.random.default_rng(5)
    a = rng.random(11)
    b = a - 0.1 + 0.2 * rng.random(11)
    p, _ = stats.permutation_p_value(a, b)
    assert p == pytest.approx(brute_force_p(a, b), abs=1e-12)


def test_randomised_permutation_test_is_seeded_and_close_to_exact():
    rng = np.random.default_rng(7)
    a = rng.random(14)
    b = a + 0.05 * rng.standard_normal(14) + 0.02
    p1, exact = stats.permutation_p_value(a, b, n_resamples=4000, seed=3)
    p2, _ = stats.permutation_p_value(a, b, n_resamples=4000, seed=3)
    assert not exact and p1 == p2
    assert p1 == pytest.approx(brute_force_p(a, b), abs=0.03)  # 2^14 = 16384 > 4000: sampled


def test_sign_flip_p_value_equals_enumeration_with_tied_queries():
    # AP-like values (1/rank) where most queries tie: flips of the tied queries leave the statistic
    # exactly at the observed value, so the tie rule decides the p-value.
    rng = np.random.default_rng(11)
    ranks_a = rng.integers(1, 6, 13)
    ranks_b = np.where(rng.random(13) < 0.6, ranks_a, rng.integers(1, 6, 13))
    a, b = 1.0 / ranks_a, 1.0 / ranks_b
    p, exact = stats.permutation_p_value(a, b, n_resamples=10_000)
    assert exact
    assert p == pytest.approx(brute_force_p(a, b), abs=1e-12)


def test_sign_flip_p_value_agrees_with_scipy_permutation_test():
    rng = np.random.default_rng(2)
    a = (rng.random(12) < 0.5).astype(float)
    b = (rng.random(12) < 0.3).astype(float)

    def diff(x, y, axis=-1):
        return x.mean(axis=axis) - y.mean(axis=axis)

    exact_scipy = sps.permutation_test((a, b), diff, permutation_type="samples", vectorized=True,
                                       n_resamples=10_000).pvalue
    assert stats.permutation_p_value(a, b)[0] == pytest.approx(exact_scipy, abs=1e-12)
    # Sampled (2^400 flips): another random stream than scipy's, the same distribution.
    a = (rng.random(400) < 0.5).astype(float)
    b = np.where(rng.random(400) < 0.8, a, 1 - a) * (rng.random(400) < 0.9)
    ours, exact = stats.permutation_p_value(a, b, n_resamples=20_000, seed=1)
    theirs = sps.permutation_test((a, b), diff, permutation_type="samples", vectorized=True, n_resamples=20_000,
                                  **stats._rng_kwargs(sps.permutation_test, 1)).pvalue
    assert not exact
    assert 0.0 < ours < 1.0 and ours == pytest.approx(theirs, abs=0.02)


def test_sign_flip_of_a_median_swaps_the_values():
    rng = np.random.default_rng(4)
    a = rng.integers(1, 30, 9).astype(float)
    b = rng.integers(1, 30, 9).astype(float)

    def brute_median() -> float:
        observed = np.median(a) - np.median(b)
        more = less = 0
        total = 0
        for mask in itertools.product((False, True), repeat=a.size):
            m = np.asarray(mask)
            t = np.median(np.where(m, b, a)) - np.median(np.where(m, a, b))
            total += 1
            more += t >= observed - 1e-12
            less += t <= observed + 1e-12
        return min(1.0, 2 * min(more, less) / total)

    p, exact = stats.permutation_p_value(a, b, stats._median)
    assert exact and p == pytest.approx(brute_median(), abs=1e-12)


def test_bootstrap_ci_equals_scipy_called_directly():
    rng = np.random.default_rng(0)
    values = (rng.random(300) < 0.4).astype(float)
    ours = stats.bootstrap_ci(values, n_resamples=1000, seed=11)
    kwargs = {"rng": np.random.default_rng(11)} if "rng" in sps.bootstrap.__code__.co_varnames else {
        "random_state": np.random.default_rng(11)}
    direct = sps.bootstrap((values,), np.mean, n_resamples=1000, confidence_level=0.95, method="percentile",
                           **kwargs)
    assert ours.point == values.mean()
    assert (ours.low, ours.high) == (direct.confidence_interval.low, direct.confidence_interval.high)
    assert ours == stats.bootstrap_ci(values, n_resamples=1000, seed=11)  # reproducible
    assert ours.low < ours.point < ours.high


def test_bootstrap_ci_of_median_and_constant_values():
    values = np.arange(1, 102, dtype=float)
    ci = stats.bootstrap_ci(values, stats._median, n_resamples=1000)
    assert ci.point == 51 and ci.low < 51 < ci.high
    assert stats.bootstrap_ci(np.full(50, 3.0)) == stats.Interval(3.0, 3.0, 3.0)


def test_a_system_against_itself_differs_by_zero_with_p_one():
    values = np.random.default_rng(1).random(200)
    res = stats.paired_test(values, values.copy(), t_test=True)
    assert (res.difference, res.low, res.high, res.p_value, res.t_p_value) == (0.0, 0.0, 0.0, 1.0, 1.0)


def test_paired_test_detects_a_clear_difference():
    rng = np.random.default_rng(2)
    a = rng.random(400)
    b = a - 0.05 + 0.02 * rng.standard_normal(400)
    res = stats.paired_test(a, b, n_permutations=2000, n_bootstrap=1000, t_test=True)
    assert res.difference == pytest.approx(a.mean() - b.mean())
    assert res.low < res.difference < res.high and res.low > 0
    assert res.p_value < 0.001 and res.t_p_value < 0.001


def test_holm_matches_hand_computation():
    p = [0.01, 0.04, 0.03, 0.5]
    # sorted: 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08 -> max(0.09, 0.08)=0.09, 0.5*1=0.5
    assert stats.holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert stats.holm([0.9, 0.8]) == [1.0, 1.0]
    assert stats.holm([]) == []


def test_metric_values_reduce_to_the_metrics():
    rng = np.random.default_rng(3)
    aoc = np.repeat(np.arange(20), rng.integers(1, 13, 20))
    scores = rng.integers(0, 4, (aoc.size, 20)).astype(float)
    o = outcomes_from_scores(scores, np.ascontiguousarray(scores.T), aoc)
    metrics = reduce(o)
    for (direction, key), (values, statistic) in stats.metric_values(o).items():
        assert float(statistic(values)) == pytest.approx(metrics[direction][key], rel=1e-12)


def test_seeds_ci_combines_query_and_seed_variance():
    rng = np.random.default_rng(4)
    base = rng.random(300)
    seeds = [np.clip(base + 0.1 * rng.standard_normal(300), 0, 1) for _ in range(3)]
    res = stats.seeds_ci(seeds, n_resamples=1000, seed=0)
    per_seed = [s.mean() for s in seeds]
    assert res.point == pytest.approx(np.mean(per_seed))
    assert res.seed_sd == pytest.approx(np.std(per_seed, ddof=1))
    direct = sps.bootstrap(tuple(seeds), lambda *xs, axis=-1: np.mean([x.mean(axis=axis) for x in xs], axis=0),
                           paired=True, n_resamples=1000, method="percentile", vectorized=True,
                           **({"rng": np.random.default_rng(0)} if "rng" in sps.bootstrap.__code__.co_varnames
                              else {"random_state": np.random.default_rng(0)}))
    assert (res.query_low, res.query_high) == pytest.approx(
        (direct.confidence_interval.low, direct.confidence_interval.high))
    e = sps.t.ppf(0.975, 2) * res.seed_sd / math.sqrt(3)
    assert res.point - res.low == pytest.approx(math.hypot(res.point - res.query_low, e))
    assert res.low < res.query_low and res.high > res.query_high
    one = stats.seeds_ci(seeds[:1], n_resamples=1000)
    assert one.seed_sd == 0 and (one.low, one.high) == (one.query_low, one.query_high)


def test_format_ci_is_compact_and_stable():
    assert stats.format_ci(0.3125, 0.304, 0.321) == "31.25 [30.40, 32.10]"


def test_metric_cis_for_one_run_and_a_seed_group():
    rng = np.random.default_rng(6)
    aoc = np.repeat(np.arange(30), 3)
    runs = []
    for _ in range(3):
        scores = rng.standard_normal((90, 30)) + 3 * (np.arange(30)[None, :] == aoc[:, None])
        runs.append(outcomes_from_scores(scores, np.ascontiguousarray(scores.T), aoc))
    one = stats.metric_cis(runs[:1], n_resamples=1000)
    assert one["t2a"]["mAP@10"]["point"] == pytest.approx(reduce(runs[0])["t2a"]["mAP@10"])
    assert set(one) == {"t2a", "a2t"} and "median_rank" in one["t2a"]
    group = stats.metric_cis(runs, n_resamples=1000)
    assert group["a2t"]["R@1"]["n_seeds"] == 3
    assert group["t2a"]["R@5"]["low"] <= group["t2a"]["R@5"]["query_low"]
