"""One immutable JSON file per run: the schema, the writer and the reader.

Schema (version 1.x; a reader refuses any other major version):

``schema_version``  "1.0"
``run_id``          unique id, also the file name (``<run_id>.json``)
``created``         ISO-8601 UTC time the file was written
``kind``            "train" for a trained run, "fusion" for ``bench fuse``, "eval" for ``bench eval``,
                    "score" for ``bench score`` (an outside file scored against the split)
``score``           kind "score" only: ``{file, sha256, format, directions, n_queries, missing, unknown,
                    list_depth}``: the scored file's name and hash, its format (trec, dcase, npz-embeddings,
                    npz-scores), the directions it holds (``metrics`` has only those), per direction the
                    queries it misses (counted as misses), the metrics it cannot give (``unknown``, e.g.
                    ``{"t2a": ["mean_rank", "median_rank"]}``, left out of ``metrics``) and its shortest list
``eval``            kind "eval" only: ``{zero_shot, trained_on, run_id, model}``: a pretrained model
                    scored without training (``zero_shot`` true), or a finished run (``run_id``,
                    trained on dataset ``trained_on``) scored on this dataset
``protocol``        the metric convention (absent means "bench": one query per caption, pessimistic
                    ties); results of different protocols are never ranked in one column
``dataset``         ``{name, options, splits: {split: {n_audios, n_captions, fingerprint}}, roots}``;
                    ``roots``: ``{member: absolute resolved data root}`` (absent in older results);
                    ``extra_captions`` (only when a member was given ``extra_captions``):
                    ``{member: {file, sha256, n_captions, n_audios}}``, the CSV's absolute path, hash,
                    caption rows and recordings named (bench.data.extra_captions); the options then
                    hold ``extra_captions`` (path) and ``extra_captions_sha256``
``audio_encoder``, ``text_encoder``, ``loss``   ``{name, options}`` with every option resolved
``seed``            integer seed
``training``        the :class:`bench.core.config.TrainSettings` used, plus device, amp and world size
``stage``           ``{stage, M, teachers, init}`` (stage 1 for plain runs)
``pipeline``        only for a stage of a preset's pipeline (bench.runs.pipeline): ``{name, stage,
                    stage_name, stages: [{name, epochs, init}], init_stage, init_combination,
                    init_run}``: the preset, this stage's 1-based index and name, every stage's name,
                    epochs and the stage it starts from, and the combination id and run id of the
                    stage this one started from (null for a first stage)
``metrics``         ``{"t2a": {...}, "a2t": {...}}`` on the test split, fractions in [0, 1]
``best_val``        ``{"epoch", "t2a", "a2t"}`` of the kept checkpoint
``chance``          expected metrics of a uniformly random ranking of the same test split
``history``         per-epoch train loss and validation metrics
``skipped``         dataset entries skipped on the user's request, each with its reason
``provenance``      bench version, git commit, Python, torch, device, plugin distributions
``timings``         seconds: total, train, eval, per epoch
``artifacts``       run directory and test embeddings (for fusion); may be absent on other machines
``per_query``       ``{file, sha256, format}``: the per-query sidecar ``<run_id>.per_query.npz`` beside
                    this file (each caption's rank, each recording's first relevant position and
                    AP@10, keyed by the dataset's ids; see :mod:`bench.evaluation.per_query`) and its sha256.
                    ``metrics`` equal what the sidecar reduces to. Absent in results written before
                    it existed; ``bench verify --write-sidecar`` adds it to such a result from its
                    test embeddings, and this is the only field it ever adds to an existing file.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from bench.core.atomic import atomic_write_text
from bench.errors import BenchError
from bench.evaluation import metric_table

SCHEMA_VERSION = "1.0"
SUPPORTED_MAJOR = 1
REQUIRED_FIELDS = (
    "schema_version",
    "run_id",
    "created",
    "dataset",
    "audio_encoder",
    "text_encoder",
    "loss",
    "seed",
    "training",
    "metrics",
    "best_val",
    "chance",
    "provenance",
    "timings",
)


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def write_result(result: dict[str, Any], results_dir: Path) -> Path:
    """Validate and write a result atomically; an existing file is never overwritten."""
    result = dict(result)
    result.setdefault("schema_version", SCHEMA_VERSION)
    result.setdefault("created", utc_now())
    check_result(result, source=f"result {result.get('run_id')}")
    path = Path(results_dir) / f"{result['run_id']}.json"
    if path.exists():
        raise BenchError(f"{path} already exists: results are immutable; use a new run id")
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def check_result(result: dict[str, Any], source: str) -> None:
    """Raise :class:`BenchError` naming ``source`` and the first problem of a result dict.

    The metrics checked are those of :mod:`bench.evaluation.metric_table`: the required ones must be numbers
    in ``metrics`` and ``chance``; one added later must be a number where a result has it.
    """
    version = str(result.get("schema_version", ""))
    major = version.split(".")[0]
    if not major.isdigit():
        raise BenchError(f"{source}: missing or malformed schema_version {version!r}")
    if int(major) != SUPPORTED_MAJOR:
        raise BenchError(
            f"{source}: schema_version {version} is not supported by bench (reads {SUPPORTED_MAJOR}.x); "
            "upgrade bench or regenerate the result"
        )
    missing = [name for name in REQUIRED_FIELDS if name not in result]
    if missing:
        raise BenchError(f"{source}: missing field {missing[0]!r} (schema {version})")
    # Tables read these names; a result that lacks them would fail later without naming its file.
    for name in ("dataset", "audio_encoder", "text_encoder", "loss"):
        block = result.get(name)
        if not isinstance(block, dict) or not isinstance(block.get("name"), str):
            raise BenchError(f"{source}: {name} must be an object with a 'name' (schema {version})")
    scored = scored_directions(result, source)
    for block in ("metrics", "chance"):
        for direction in metric_table.DIRECTIONS:
            if block == "metrics" and direction not in scored:
                continue
            values = (result.get(block) or {}).get(direction)
            if not isinstance(values, dict):
                raise BenchError(f"{source}: {block}.{direction} is missing (schema {version})")
            for metric in metric_table.metrics(direction):
                if not metric.required and metric.key not in values:
                    continue
                value = values.get(metric.key)
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise BenchError(f"{source}: {block}.{direction}[{metric.key!r}] is missing or not a number")


def scored_directions(result: dict[str, Any], source: str) -> tuple[str, ...]:
    """The directions a result's ``metrics`` hold: both, or a ``score`` result's ``score.directions``."""
    if result.get("kind") != "score":
        return metric_table.DIRECTIONS
    directions = (result.get("score") or {}).get("directions")
    if not isinstance(directions, list) or not directions or not set(directions) <= set(metric_table.DIRECTIONS):
        raise BenchError(f"{source}: score.directions must list t2a and/or a2t")
    return tuple(directions)


def read_result(path: Path) -> dict[str, Any]:
    """Read and check one result file; errors name the file."""
    path = Path(path)
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: invalid JSON or bytes that are not UTF-8
        raise BenchError(f"{path}: cannot read result: {exc}") from None
    if not isinstance(result, dict):
        raise BenchError(f"{path}: a result file holds one JSON object")
    check_result(result, source=str(path))
    return result


def read_results(results_dir: Path) -> list[dict[str, Any]]:
    """All results in a directory, sorted by run id for a stable order; the first bad file raises."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return []
    return [read_result(path) for path in sorted(results_dir.glob("*.json"))]


def read_result_files(results_dir: Path) -> tuple[list[tuple[dict[str, Any], Path]], list[str]]:
    """Every readable result with its path, and one line per file that cannot be read.

    One truncated, invalid or future-schema file must not hide the others (nor stop a run that
    writes into the same directory), so each problem is returned, naming its file, instead of raised.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return [], []
    found: list[tuple[dict[str, Any], Path]] = []
    problems: list[str] = []
    for path in sorted(results_dir.glob("*.json")):
        try:
            found.append((read_result(path), path))
        except BenchError as exc:
            problems.append(" ".join(str(exc).split()))
    return found, problems


def read_results_report(results_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Tolerant :func:`read_results`: ``(readable results, one problem line per unreadable file)``."""
    found, problems = read_result_files(results_dir)
    return [result for result, _ in found], problems


def find_result(run_id: str, results_dir: Path) -> dict[str, Any]:
    path = Path(results_dir) / f"{run_id}.json"
    if not path.is_file():
        known = sorted(p.stem for p in Path(results_dir).glob("*.json"))
        raise BenchError(
            f"no result for run {run_id!r} in {results_dir} (known: {', '.join(known[-5:]) or 'none'}); "
            "pass --results-dir if it lives elsewhere"
        )
    return read_result(path)
