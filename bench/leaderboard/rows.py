"""The leaderboard's rows, built from result dicts: labels, benchmarks, training budgets, seed groups.

:mod:`bench.leaderboard.tables` formats these rows into tables; plots draw them. Nothing here reads files.

A *benchmark* is a dataset, its test split (fingerprint) and the metric protocol: results of
different protocols never share a table, so never a column. Within a benchmark, runs that differ
only by seed are one row. Rows are labelled by their training budget (:func:`training_label`):
epochs, ``teacher+student`` epochs for distillation, ``N × budget`` for a fusion of N runs,
``zero-shot`` or ``trained on X`` for ``bench eval`` results, ``pre-train 16 + fine-tune 16`` for the
final stage of a pipeline (whose earlier stages are not rows of their own), so that a table never ranks
different budgets together without saying so.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from bench.evaluation import metric_table

DEFAULT_PROTOCOL = "bench"
SMALL_TEST_QUERIES = 100
"""Below this many test queries (captions for t2a, recordings for a2t) a table carries a warning."""


# ----------------------------------------------------------------------------- labels


def short_path(value: Any) -> str:
    """An absolute path as its last two parts (``…/data/clotho``): tables stay narrow and say where."""
    text = str(value)
    path = PurePath(text)
    if not path.is_absolute() or len(path.parts) <= 3:
        return text
    return "…/" + "/".join(path.parts[-2:])


def _short(value: Any) -> str:
    text = short_path(value)
    return text if len(text) <= 24 else "…" + text[-23:]


def component_label(component: dict[str, Any]) -> str:
    """``name`` plus the options the user set, e.g. ``triplet (negatives=hard)``."""
    name = component["name"]
    chosen = component.get("set") or {}
    if not chosen:
        return name
    parts = ", ".join(f"{key}={_short(value)}" for key, value in sorted(chosen.items()))
    return f"{name} ({parts})"


def loss_label(result: dict[str, Any]) -> str:
    label = component_label(result["loss"])
    stage = result.get("stage") or {}
    if result.get("kind") == "fusion":
        fusion = result.get("fusion", {})
        return f"fusion: {fusion.get('method', '?')} of {len(fusion.get('runs', []))} runs"
    if stage.get("M"):
        label = f"{label} (M={stage['M']})"
    if stage.get("role") == "teacher":
        label = f"{label} [stage 1]"
    return label


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


# ----------------------------------------------------------------------------- benchmarks


def protocol_of(result: dict[str, Any]) -> str:
    return str(result.get("protocol") or DEFAULT_PROTOCOL)


def _test_split(result: dict[str, Any]) -> dict[str, Any]:
    return (result["dataset"].get("splits") or {}).get("test") or {}


def benchmark_key(result: dict[str, Any]) -> tuple[str, str, str]:
    """``(dataset, test-split fingerprint, protocol)``: one table each."""
    return result["dataset"]["name"], str(_test_split(result).get("fingerprint", "")), protocol_of(result)


def benchmark_title(result: dict[str, Any], escape: Callable[[str], str] = str) -> str:
    """The table's heading; ``escape`` is applied to every part that comes from the result's strings
    (the markdown writer escapes them for markdown; HTML escapes the whole title itself)."""
    dataset = result["dataset"]
    test = _test_split(result)
    options = dataset.get("set") or {}
    opts = ", ".join(f"{escape(str(k))}={escape(_short(v))}" for k, v in sorted(options.items()))
    title = escape(dataset["name"]) + (f" ({opts})" if opts else "")
    if test:
        counts = f"{test.get('n_audios', '?')} audios, {test.get('n_captions', '?')} captions"
        title += f" — test: {escape(counts)}"
        if test.get("fingerprint"):
            title += f" [{escape(str(test['fingerprint'])[:8])}]"
    return f"{title} — protocol: {escape(protocol_of(result))}"


def slug(key: tuple[str, ...]) -> str:
    """A benchmark's file name (site page, plot) from its key: ``synthetic-5ad84006`` (protocol added
    when not the default); only letters, digits, ``.``, ``_`` and ``-``."""
    name, fingerprint, *rest = (*key, "")
    protocol = [p for p in rest[:1] if p and p != DEFAULT_PROTOCOL]
    parts = [name.replace("+", "-"), fingerprint[:8] or "unknown", *protocol]
    return re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join(parts)).strip(".") or "benchmark"


def small_test_warning(result: dict[str, Any]) -> str | None:
    """A warning line when the test split has fewer than :data:`SMALL_TEST_QUERIES` queries."""
    test = _test_split(result)
    counts = {"t2a": test.get("n_captions"), "a2t": test.get("n_audios")}
    small = {d: n for d, n in counts.items() if isinstance(n, int) and n < SMALL_TEST_QUERIES}
    if not small:
        return None
    described = " and ".join(f"{n} {d} queries" for d, n in small.items())
    return (f"⚠ This test split has only {described} (fewer than {SMALL_TEST_QUERIES}): differences "
            "between rows here say little.")


# ----------------------------------------------------------------------------- budgets


def _epochs(result: dict[str, Any], by_id: dict[str, dict[str, Any]], depth: int = 0) -> str:
    """Training epochs behind a result without the unit: ``8``, ``4+4`` (teachers+student), ``3 × 4``."""
    if depth > 8:  # a cycle of run ids in hand-edited results: stop rather than recurse forever
        return "?"
    if result.get("kind") == "fusion":
        members = list((result.get("fusion") or {}).get("runs") or [])
        budgets = sorted({_epochs(by_id[m], by_id, depth + 1) if m in by_id else "?" for m in members})
        return f"{len(members)} × {'/'.join(budgets) or '?'}"
    chain = pipeline_budget(result)
    if chain:
        return chain
    own = str((result.get("training") or {}).get("epochs", "") or "?")
    stage = result.get("stage") or {}
    if stage.get("stage") == 2:
        teachers = list(stage.get("teachers") or []) or [stage.get("init")]
        before = sorted({_epochs(by_id[t], by_id, depth + 1) if t in by_id else "?" for t in teachers})
        return f"{'/'.join(before)}+{own}"
    return own


def pipeline_budget(result: dict[str, Any]) -> str | None:
    """A pipeline stage's whole budget along the stages it starts from: ``pre-train 16 + fine-tune 16``."""
    info = result.get("pipeline") or {}
    stages = {str(s.get("name")): s for s in info.get("stages") or [] if isinstance(s, dict)}
    name = info.get("stage_name")
    chain: list[dict[str, Any]] = []
    while name in stages and len(chain) <= len(stages):
        chain.insert(0, stages[name])
        name = stages[name].get("init")
    return " + ".join(f"{s['name']} {s.get('epochs', '?')}" for s in chain) or None


def is_intermediate_stage(result: dict[str, Any]) -> bool:
    """A pipeline stage other than its last: the leaderboard ranks the pipeline by its final stage."""
    info = result.get("pipeline") or {}
    return bool(info.get("stages")) and info.get("stage") != len(info["stages"])


def training_label(result: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str:
    """The row's budget cell: ``8 epochs``, ``4+4 epochs``, ``3 × 4 epochs``, ``zero-shot``, ``trained on X``,
    ``scored file`` (``bench score``: bench knows nothing of how the outputs were made)."""
    if result.get("kind") == "score":
        return "scored file"
    if result.get("kind") == "eval":
        info = result.get("eval") or {}
        if info.get("zero_shot"):
            return "zero-shot"
        run = by_id.get(str(info.get("run_id")))
        label = f"trained on {info.get('trained_on') or '?'}"
        return f"{label} ({_epochs(run, by_id)} epochs)" if run else label
    return f"{_epochs(result, by_id)} epochs"


def train_seconds(result: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> float | None:
    """Training time of one run; for a fusion the mean of its members' (a fusion trains nothing); for
    an eval result its training run's, None when that is not here or the model was not trained by bench."""
    if result.get("kind") == "score":
        return None
    if result.get("kind") == "eval":
        run = by_id.get(str((result.get("eval") or {}).get("run_id")))
        return None if run is None or run.get("kind") == "eval" else train_seconds(run, by_id)
    own = float((result.get("timings") or {}).get("train_s", 0.0) or 0.0)
    if result.get("kind") != "fusion":
        return own
    members = list((result.get("fusion") or {}).get("runs") or [])
    found = [float((by_id[m].get("timings") or {}).get("train_s", 0.0) or 0.0) for m in members if m in by_id]
    if found:
        return statistics.fmean(found)
    # Older fusion results record the members' total: the mean is that over their number.
    return own / len(members) if members else own


# ----------------------------------------------------------------------------- rows


def _number(result: dict[str, Any], block: str, direction: str, key: str) -> float | None:
    value = ((result.get(block) or {}).get(direction) or {}).get(key)
    # A metric added to the table after a result was written is absent from it: skip, don't fail.
    return None if value is None or value != value else float(value)


def _latest_per_seed(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A seed run again with --force counts once: its latest run (run ids sort by time).
    by_seed: dict[str, dict[str, Any]] = {}
    for result in sorted(runs, key=lambda r: r["run_id"]):
        by_seed[str(result.get("seed"))] = result
    return [by_seed[s] for s in sorted(by_seed)]


def _row(runs: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    first = runs[0]
    direction, primary_key = metric_table.PRIMARY
    values = {metric_table.column_name(d, m): [v for v in (_number(r, "metrics", d, m.key) for r in runs)
                                                if v is not None]
              for d, m in metric_table.leaderboard_columns()}
    primary = [v for v in (_number(r, "metrics", direction, primary_key) for r in runs) if v is not None]
    seconds = [t for t in (train_seconds(r, by_id) for r in runs) if t is not None]
    return {
        "sort": statistics.fmean(primary) if primary else None,
        "Audio encoder": component_label(first["audio_encoder"]),
        "Text encoder": component_label(first["text_encoder"]),
        "Loss": loss_label(first),
        "values": values,
        "Seeds": str(len(runs)),
        "Training": training_label(first, by_id),
        "Train time": duration(statistics.fmean(seconds)) if seconds else "",
        "Device": str((first.get("provenance") or {}).get("device", "?")),
        "combination": str(first.get("combination") or first["run_id"]),
        "runs": runs,
    }


def _order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Best first within each budget group; groups ordered by their best row, so the top row is the best."""
    better = metric_table.get(metric_table.PRIMARY[1]).higher_is_better

    def score(row: dict[str, Any]) -> tuple[bool, float]:
        value = row["sort"]
        return value is None, 0.0 if value is None else (-value if better else value)

    def row_key(row: dict[str, Any]) -> tuple[Any, ...]:
        return (*score(row), row["Loss"], row["Audio encoder"], row["Text encoder"], row["combination"])

    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["Training"], []).append(row)
    ordered = sorted((sorted(group, key=row_key) for group in groups.values()),
                     key=lambda group: (*score(group[0]), group[0]["Training"]))
    return [row for group in ordered for row in group]


def aggregate(results: list[dict[str, Any]], escape: Callable[[str], str] = str,
              ) -> dict[tuple[str, str, str], tuple[str, list[dict[str, Any]], dict]]:
    """Per benchmark (:func:`benchmark_key`): its title, its rows in table order and the chance metrics.

    A row holds its labels, its training budget, its seed runs (``runs``, the latest per seed) and,
    per leaderboard column (:func:`bench.evaluation.metric_table.leaderboard_columns`), the list of per-seed
    values as numbers; tables format them, plots draw them. ``escape`` goes to :func:`benchmark_title`.
    """
    results = sorted(results, key=lambda r: r["run_id"])
    by_id = {r["run_id"]: r for r in results}
    benchmarks: dict[tuple[str, str, str], dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for result in results:
        if is_intermediate_stage(result):
            continue
        combination = (str(result.get("kind", "train")), str(result.get("combination") or result["run_id"]))
        benchmarks.setdefault(benchmark_key(result), {}).setdefault(combination, []).append(result)
    out: dict[tuple[str, str, str], tuple[str, list[dict[str, Any]], dict]] = {}
    for key in sorted(benchmarks):
        groups = benchmarks[key]
        rows = _order([_row(_latest_per_seed(groups[c]), by_id) for c in sorted(groups)])
        first = min((r for runs in groups.values() for r in runs), key=lambda r: r["run_id"])
        out[key] = (benchmark_title(first, escape), rows, first["chance"])
    return out
