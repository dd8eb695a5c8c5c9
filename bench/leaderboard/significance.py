"""Confidence intervals and significance marks for leaderboard rows, from per-query sidecars.

A row whose results record a per-query sidecar (``per_query``, see :mod:`bench.evaluation.per_query`) gets,
per metric column, a 95% percentile-bootstrap CI over test queries (:func:`bench.results.stats.metric_cis`:
one run, or a seed group whose interval also includes the seed spread). The bootstrap is seeded
(:data:`CI_SEED`), so the same sidecars always give the same digits.

Per table, the rows with sidecars are tested against the best of them on the primary metric with
:func:`bench.results.compare.not_significantly_worse` (two-sided paired randomisation test, Holm-adjusted,
alpha :data:`bench.results.stats.ALPHA`). Rows without sidecars are not tested, and the caption says how
many were.

Sidecars are only read, never written or cached: the committed leaderboard is recomputed from
what is committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.evaluation import metric_table

CI_SEED = 0
"""Seed of every leaderboard bootstrap and permutation test: the same inputs give the same table."""


@dataclass
class TableStats:
    """What :func:`annotate` found for one table, row by row (indices into the table's rows)."""

    cis: dict[int, dict[str, tuple[float, float]]] = field(default_factory=dict)
    """Row -> column name -> (low, high) of its 95% CI."""
    notes: list[str] = field(default_factory=list)
    """One line per row whose sidecar could not be used, naming the file and why."""
    not_worse: set[int] | None = None
    """Rows not significantly worse than the best; None when fewer than two rows could be tested."""
    tested: int = 0


def _row_outcomes(row: dict[str, Any], sources: dict[str, Path]) -> tuple[list[Any] | None, str | None]:
    """The aligned per-query outcomes of a row's seed runs, or ``(None, why not)``."""
    from bench.evaluation.per_query import align, load_for_result

    runs = row["runs"]
    if not any(isinstance(r.get("per_query"), dict) for r in runs):
        return None, None  # a result from before sidecars: rendered as it always was
    outcomes = []
    for result in runs:
        path = sources.get(result["run_id"])
        if path is None:
            return None, None  # rendered from dicts alone (no files known): nothing to read
        if not isinstance(result.get("per_query"), dict):
            return None, f"{path}: the result records no per-query sidecar, unlike its other seeds"
        try:
            found = load_for_result(result, path)
            if outcomes:
                _, found = align(outcomes[0], found, (outcomes_name(runs[0]), outcomes_name(result)))
        except BenchError as exc:
            return None, " ".join(str(exc).split())
        outcomes.append(found)
    return outcomes, None


def outcomes_name(result: dict[str, Any]) -> str:
    return str(result.get("run_id", "?"))


def column_cis(outcomes: list[Any]) -> dict[str, tuple[float, float]]:
    """Column name -> (low, high): what :func:`bench.results.stats.metric_cis` gives, for the shown columns only.

    The same calls as ``metric_cis`` (one run: ``bootstrap_ci``; a seed group: ``seeds_ci``, the
    combined interval), restricted to the leaderboard's columns: the medians and mean ranks it
    would also bootstrap are not shown and cost most of the time.
    """
    from bench.results import stats

    values = [stats.metric_values(o) for o in outcomes]
    out = {}
    for d, metric in metric_table.leaderboard_columns():
        if (d, metric.key) not in values[0]:
            continue
        statistic = values[0][(d, metric.key)][1]
        runs = [v[(d, metric.key)][0] for v in values]
        if len(runs) == 1:
            ci: Any = stats.bootstrap_ci(runs[0], statistic, seed=CI_SEED)
        else:
            ci = stats.seeds_ci(runs, statistic, seed=CI_SEED)
        out[metric_table.column_name(d, metric)] = (ci.low, ci.high)
    return out


def annotate(rows: list[dict[str, Any]], sources: dict[str, Path]) -> TableStats:
    """CIs for every row with usable sidecars and the set not significantly worse than the best."""
    out = TableStats()
    usable: dict[int, list[Any]] = {}
    for index, row in enumerate(rows):
        outcomes, problem = _row_outcomes(row, sources)
        if problem:
            out.notes.append(problem)
        if outcomes:
            usable[index] = outcomes
    if not usable:
        return out
    from bench.evaluation.per_query import align
    from bench.results.compare import System, not_significantly_worse

    reference = next(iter(usable.values()))[0]
    systems = []
    for index, outcomes in usable.items():
        out.cis[index] = column_cis(outcomes)
        try:
            aligned = [align(reference, o, ("the first tested row", outcomes_name(rows[index]["runs"][0])))[1]
                       for o in outcomes]
        except BenchError as exc:
            out.notes.append(" ".join(str(exc).split()) + "; not tested for significance")
            continue
        systems.append(System(str(index), [], aligned))
    out.tested = len(systems)
    if len(systems) >= 2:
        out.not_worse = {int(name) for name in not_significantly_worse(systems, metric_table.PRIMARY, seed=CI_SEED)}
    return out


def significance_caption(tested: int, total: int) -> str:
    """The line under a table's title that names the test and alpha behind the bold cells."""
    from bench.results import stats

    direction, key = metric_table.PRIMARY
    scope = "all rows" if tested == total else f"the {tested} rows with per-query sidecars"
    return (f"**Bold** {direction} {key}: not significantly worse than the best row ({stats.TEST_NAME} on "
            f"per-query values, two-sided, {stats.N_PERMUTATIONS:,} permutations, Holm-corrected, "
            f"alpha {stats.ALPHA}; tested: {scope}).")
