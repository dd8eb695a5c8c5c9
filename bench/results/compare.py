"""``bench compare A B [C ...]``: paired comparison of runs (or groups of seed runs) on the same queries.

Each system is a result JSON (path or run id), a comma-separated list of them (one group of seed
runs), or a combination id (every seed run of that configuration in the results directory, the
latest per seed, as the leaderboard counts them). Per-query outcomes come from the sidecar each
result names (``per_query``), or are recomputed from the run's stored test embeddings.

For every pair of systems and every metric: the difference ``A - B`` with a 95% paired
percentile-bootstrap CI and the p-value of a two-sided paired randomisation test (see
:mod:`bench.results.stats`), optionally a paired t-test; with more than two systems the randomisation
p-values of each metric are Holm-adjusted over all pairs. A group of seeds enters the paired test
through its seed-averaged per-query values (for median_rank: the median of the seed-averaged
ranks). Systems on different test splits or datasets are refused with one line.
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import ConfigError, DataError
from bench.evaluation.metric_table import DIRECTIONS, PRIMARY, get
from bench.evaluation.metric_table import metrics as table_metrics
from bench.evaluation.per_query import Outcomes, align, load_for_result, outcomes_from_npz
from bench.results import stats
from bench.results.files import read_result, read_result_in, read_results_report
from bench.results.labels import system_labels
from bench.results.schema import is_id

DEFAULT_METRICS: tuple[tuple[str, str], ...] = tuple(
    (d, m.key) for d in DIRECTIONS for m in table_metrics(d) if m.key != "median_rank"
)
"""Every metric of the table (median_rank left out: a median's paired test says little)."""


@dataclass
class System:
    """One compared system: a name and its seed runs ``(result, result_path)``."""

    name: str
    runs: list[tuple[dict[str, Any], Path]]
    outcomes: list[Outcomes] = field(default_factory=list)
    spec: str = ""  # what the user passed (a path, run ids or a combination id)

    @property
    def run_ids(self) -> list[str]:
        return [r["run_id"] for r, _ in self.runs]


def _test_split(result: dict[str, Any]) -> tuple[str, str]:
    dataset = result.get("dataset") or {}
    test = (dataset.get("splits") or {}).get("test") or {}
    return str(dataset.get("name", "?")), str(test.get("fingerprint", ""))


def _latest_per_seed(runs: list[tuple[dict[str, Any], Path]]) -> list[tuple[dict[str, Any], Path]]:
    by_seed: dict[Any, tuple[dict[str, Any], Path]] = {}
    for run in sorted(runs, key=lambda r: r[0]["run_id"]):  # run ids sort by time: keep the latest
        by_seed[run[0].get("seed")] = run
    return [by_seed[s] for s in sorted(by_seed, key=str)]


def resolve_system(spec: str, results_dir: Path) -> System:
    """A system from a path, a run id, ``a,b,c`` (a group), or a combination id."""
    runs: list[tuple[dict[str, Any], Path]] = []
    for part in [p for p in spec.split(",") if p]:
        path = Path(part)
        if path.suffix == ".json" and path.is_file():
            runs.append((read_result(path), path))
            continue
        path = Path(results_dir) / f"{part}.json"
        if is_id(part) and path.is_file():
            runs.append((read_result_in(path, results_dir), path))
            continue
        group = [(r, Path(results_dir) / f"{r['run_id']}.json") for r in read_results_report(results_dir)[0]
                 if len(part) >= 6 and str(r.get("combination") or "").startswith(part)]
        if not group:
            raise ConfigError(f"{part!r} is neither a result file, a run id nor a combination id in {results_dir}")
        combos = {r.get("combination") for r, _ in group}
        if len(combos) > 1:
            raise ConfigError(f"{part!r} matches {len(combos)} combinations in {results_dir}; give more characters")
        runs.extend(_latest_per_seed(group))
    if not runs:
        raise ConfigError(f"empty system {spec!r}: give a run id, a result file or a combination id")
    splits = {_test_split(r) for r, _ in runs}
    if len(splits) > 1:
        raise ConfigError(f"system {spec!r} mixes runs on different test splits; group only seeds of one setup")
    return System(spec, runs, spec=spec)


def _outcomes_of(result: dict[str, Any], path: Path, runs_dir: Path | None = None) -> Outcomes:
    """The run's sidecar if it records one, else its stored test embeddings (under the runs directory)."""
    if isinstance(result.get("per_query"), dict):
        return load_for_result(result, path)
    from bench.results.verify import embeddings_path

    emb = (result.get("artifacts") or {}).get("test_embeddings")
    found = embeddings_path(result, path, runs_dir)
    if found is not None:
        return outcomes_from_npz(found)
    raise DataError(
        f"{path}: no per-query sidecar and no test embeddings ({emb or 'none recorded'}); "
        "compare needs one of them"
    )


def load_systems(systems: list[System], runs_dir: Path | None = None) -> None:
    """Fill every system's per-query outcomes, all aligned to the first system's query order."""
    protocols = {_test_split(r) for s in systems for r, _ in s.runs}
    if len({name for name, _ in protocols}) > 1 or len({fp for _, fp in protocols}) > 1:
        described = ", ".join(sorted(f"{n} [{fp[:8]}]" for n, fp in protocols))
        raise ConfigError(f"the systems were evaluated on different test splits ({described}); compare needs one split")
    reference: Outcomes | None = None
    for system in systems:
        system.outcomes = []
        for result, path in system.runs:
            o = _outcomes_of(result, path, runs_dir)
            if reference is None:
                reference = o
            else:
                _, o = align(reference, o, (systems[0].name, system.name))
            system.outcomes.append(o)


def name_systems(systems: list[System]) -> None:
    """Name every system by what differs between them (:mod:`bench.results.labels`), never by a cut prefix."""
    for system, label in zip(systems, system_labels([s.runs for s in systems])):
        system.name = label


def common_metrics(systems: list[System], metrics: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The metrics every compared result claims: a scored file may lack a direction or its ranks."""
    return tuple(key for key in metrics
                 if all(key[1] in ((r.get("metrics") or {}).get(key[0]) or {}) for s in systems for r, _ in s.runs))


def _values(system: System, key: tuple[str, str]) -> tuple[np.ndarray, stats.Statistic]:
    per_seed = [stats.metric_values(o)[key] for o in system.outcomes]
    statistic = per_seed[0][1]
    return np.mean([v for v, _ in per_seed], axis=0), statistic


def compare(
    systems: list[System],
    metrics: tuple[tuple[str, str], ...] = DEFAULT_METRICS,
    *,
    seed: int = 0,
    n_permutations: int = stats.N_PERMUTATIONS,
    n_bootstrap: int = stats.N_BOOTSTRAP,
    t_test: bool = False,
    alpha: float = stats.ALPHA,
) -> dict[str, Any]:
    """Every pair, every metric: the JSON form (``load_systems`` must have run)."""
    if len(systems) < 2:
        raise ConfigError("compare needs at least two systems")
    rows: list[dict[str, Any]] = []
    if all(s.runs for s in systems):
        metrics = common_metrics(systems, metrics)
    for key in metrics:
        part = []
        for a, b in itertools.combinations(systems, 2):
            va, statistic = _values(a, key)
            vb, _ = _values(b, key)
            res = stats.paired_test(va, vb, statistic, n_permutations=n_permutations, n_bootstrap=n_bootstrap,
                                    seed=seed, t_test=t_test)
            part.append({
                "a": a.name, "b": b.name, "direction": key[0], "metric": key[1],
                "a_value": float(statistic(va)), "b_value": float(statistic(vb)), **res.as_dict(),
            })
        adjusted = stats.holm([r["p_value"] for r in part]) if len(systems) > 2 else [r["p_value"] for r in part]
        for row, p in zip(part, adjusted):
            row["p_adjusted"] = p
            row["significant"] = bool(p < alpha)
        rows.extend(part)
    return {
        "test": f"two-sided {stats.TEST_NAME} ({n_permutations} permutations or exact)",
        "ci": f"{int(stats.CONFIDENCE * 100)}% paired {stats.CI_METHOD} bootstrap over queries "
              f"({n_bootstrap} resamples)",
        "correction": "holm" if len(systems) > 2 else "none",
        "alpha": alpha,
        "seed": seed,
        "systems": [{"name": s.name, "spec": s.spec, "runs": s.run_ids, "n_queries": {"t2a": s.outcomes[0].n_captions,
                                                                      "a2t": s.outcomes[0].n_audios}}
                    for s in systems],
        "comparisons": rows,
    }


def not_significantly_worse(
    systems: list[System],
    key: tuple[str, str] = PRIMARY,
    *,
    alpha: float = stats.ALPHA,
    seed: int = 0,
    n_permutations: int = stats.N_PERMUTATIONS,
) -> list[str]:
    """Names of the systems not significantly worse than the best on ``key`` (the best included).

    The best is the system with the best value (seed-averaged); every other system is tested
    against it with the paired randomisation test, Holm-adjusted over those comparisons; a system
    whose adjusted p-value is at least ``alpha`` is not significantly worse. For a leaderboard
    caption: "not significantly worse than the best: two-sided paired randomisation test, Holm, alpha".
    """
    if not systems:
        return []
    better = get(key[1]).higher_is_better
    values = [_values(s, key) for s in systems]
    points = [float(statistic(v)) for v, statistic in values]
    best = max(range(len(systems)), key=lambda i: points[i] if better else -points[i])
    others = [i for i in range(len(systems)) if i != best]
    p = [stats.permutation_p_value(values[best][0], values[i][0], values[best][1], n_resamples=n_permutations,
                                   seed=seed)[0] for i in others]
    adjusted = stats.holm(p)
    keep = {best} | {i for i, q in zip(others, adjusted) if q >= alpha}
    return [systems[i].name for i in sorted(keep)]


def _fmt(metric: str, value: float) -> str:
    # Differences are formatted like the values: percent with 2 decimals, or a rank.
    return get(metric).format(value)


def render(report: dict[str, Any]) -> str:
    """A readable table of the JSON form."""
    from tabulate import tabulate

    table = []
    for r in report["comparisons"]:
        table.append([
            f"{r['direction']} {r['metric']}", r["a"], r["b"], _fmt(r["metric"], r["a_value"]),
            _fmt(r["metric"], r["b_value"]),
            f"{_fmt(r['metric'], r['difference'])} [{_fmt(r['metric'], r['low'])}, {_fmt(r['metric'], r['high'])}]",
            f"{r['p_value']:.4f}", f"{r['p_adjusted']:.4f}", "*" if r["significant"] else "",
        ] + ([f"{r['t_p_value']:.4f}"] if r.get("t_p_value") is not None else []))
    headers = ["metric", "A", "B", "A", "B", "A - B [95% CI]", "p", "p (Holm)" if report["correction"] == "holm"
               else "p (adj.)", "sig."]
    if table and len(table[0]) > len(headers):
        headers.append("p (t-test)")
    systems = "; ".join(f"{s['name']}: {len(s['runs'])} run(s)" for s in report["systems"])
    caption = (f"Test: {report['test']}, alpha = {report['alpha']}; CI: {report['ci']}; "
               f"* = significant after {report['correction']} correction. Metrics in %, ranks as is.")
    return f"{systems}\n\n{tabulate(table, headers=headers, tablefmt='github')}\n\n{caption}\n"


def run(args: argparse.Namespace) -> int:
    """``bench compare`` with parsed arguments; user mistakes raise BenchError (one line)."""
    if len(args.systems) < 2:
        raise ConfigError("compare needs at least two systems")
    if args.permutations < 1000 or args.bootstrap < 1000:
        raise ConfigError("--permutations and --bootstrap must be at least 1000")
    systems = [resolve_system(spec, Path(args.results_dir)) for spec in args.systems]
    name_systems(systems)
    load_systems(systems, Path(args.runs_dir) if getattr(args, "runs_dir", None) else None)
    report = compare(systems, seed=args.seed, n_permutations=args.permutations, n_bootstrap=args.bootstrap,
                     t_test=args.t_test, alpha=args.alpha)
    print(json.dumps(report, indent=2) if args.json else render(report), end="" if not args.json else "\n")
    return 0
