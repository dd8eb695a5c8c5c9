"""One immutable JSON file per run: the writer and the reader.

The schema (version 1.x; a reader refuses any other major version) is the published JSON Schema
``bench/results/result.schema.json``, explained field by field in ``docs/result-schema.md`` and
checked by :mod:`bench.results.schema`. A result is data, never a path or markup: its ids and names
have safe patterns, artifact paths are relative to the runs directory (:mod:`bench.results.local_paths`),
and a file over :data:`MAX_RESULT_BYTES`, with NaN or infinity, or reached through a symlink out of
its results directory is refused with one line naming it.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

from bench.core.atomic import atomic_write_text
from bench.core.safe_paths import inside, is_inside
from bench.errors import BenchError
from bench.results import schema
from bench.results.local_paths import publishable

SCHEMA_VERSION = "1.0"
SUPPORTED_MAJOR = 1
MAX_RESULT_BYTES = 16 * 2**20
"""A result file larger than this is refused unread (the committed ones are about 10 kB)."""
REQUIRED_FIELDS: tuple[str, ...] = tuple(schema.published_schema()["required"])


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def write_result(result: dict[str, Any], results_dir: Path, *, runs_dir: Path | None = None) -> Path:
    """Validate and write a result atomically as it is published (no local paths:
    :func:`bench.results.local_paths.publishable`); an existing file is never overwritten."""
    result = publishable(result, runs_dir=runs_dir, results_dir=Path(results_dir))
    result.setdefault("schema_version", SCHEMA_VERSION)
    result.setdefault("created", utc_now())
    check_result(result, source=f"result {result.get('run_id')}")
    path = inside(results_dir, f"{result['run_id']}.json", what="result file")
    if path.exists():
        raise BenchError(f"{path} already exists: results are immutable; use a new run id")
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def check_result(result: dict[str, Any], source: str) -> None:
    """Raise :class:`BenchError` naming ``source`` and the first problem of a result dict.

    The checks are the published JSON Schema (``result.schema.json``, :mod:`bench.results.schema`),
    with the metrics of :mod:`bench.evaluation.metric_table`: the required ones must be numbers
    in ``metrics`` and ``chance``; one added later must be a number where a result has it.
    """
    version = str(result.get("schema_version", ""))
    major = version.split(".")[0]
    if not major.isdigit():
        raise BenchError(f"{source}: missing or malformed schema_version {_short(version)!r}")
    if int(major) != SUPPORTED_MAJOR:
        raise BenchError(
            f"{source}: schema_version {_short(version)} is not supported by bench (reads {SUPPORTED_MAJOR}.x); "
            "upgrade bench or regenerate the result"
        )
    found = schema.problems(result)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise BenchError(f"{source}: {found[0]}{more} (schema {_short(version)}, docs/result-schema.md)")


def _short(text: str) -> str:
    return text if len(text) <= 20 else text[:17] + "..."


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows (results hold finite numbers only)")


def read_result(path: Path) -> dict[str, Any]:
    """Read and check one result file; errors name the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_RESULT_BYTES:
            raise BenchError(f"{path}: {size:,} bytes, over the {MAX_RESULT_BYTES:,}-byte limit of a result file; "
                             "refused unread")
        result = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except (OSError, ValueError) as exc:  # ValueError: invalid JSON, NaN/Infinity, bytes that are not UTF-8
        raise BenchError(f"{path}: cannot read result: {' '.join(str(exc).split())[:200]}") from None
    except RecursionError:
        raise BenchError(f"{path}: cannot read result: nested too deeply") from None
    if not isinstance(result, dict):
        raise BenchError(f"{path}: a result file holds one JSON object")
    check_result(result, source=str(path))
    return result


def result_paths(results_dir: Path) -> list[Path]:
    """The ``*.json`` files of a results directory, sorted (empty when it does not exist)."""
    results_dir = Path(results_dir)
    return sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []


def read_result_in(path: Path, results_dir: Path) -> dict[str, Any]:
    """:func:`read_result` for a file of ``results_dir``: refuses a symlink out of it, and a file
    whose run id is not its name (``<run_id>.json``: two files can never claim one run id)."""
    path = Path(path)
    if not is_inside(path, results_dir):
        raise BenchError(f"{path}: a symlink out of the results directory {results_dir}; refused unread")
    result = read_result(path)
    if path.name != f"{result['run_id']}.json":
        raise BenchError(f"{path}: holds run_id {result['run_id']!r}, but a result file is named <run_id>.json; "
                         "rename it or restore its run id")
    return result


def read_results(results_dir: Path) -> list[dict[str, Any]]:
    """All results in a directory, sorted by run id for a stable order; the first bad file raises."""
    return [read_result_in(path, results_dir) for path in result_paths(results_dir)]


def read_result_files(results_dir: Path) -> tuple[list[tuple[dict[str, Any], Path]], list[str]]:
    """Every readable result with its path, and one line per file that cannot be read.

    One truncated, invalid or future-schema file must not hide the others (nor stop a run that
    writes into the same directory), so each problem is returned, naming its file, instead of raised.
    """
    found: list[tuple[dict[str, Any], Path]] = []
    problems: list[str] = []
    for path in result_paths(results_dir):
        try:
            found.append((read_result_in(path, results_dir), path))
        except BenchError as exc:
            problems.append(" ".join(str(exc).split()))
    return found, problems


def read_results_report(results_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Tolerant :func:`read_results`: ``(readable results, one problem line per unreadable file)``."""
    found, problems = read_result_files(results_dir)
    return [result for result, _ in found], problems


def find_result(run_id: str, results_dir: Path) -> dict[str, Any]:
    if not schema.is_id(run_id):
        raise BenchError(f"{_short(run_id)!r} is not a run id (letters, digits, '.', '_', '+', '-'; no '..')")
    path = Path(results_dir) / f"{run_id}.json"
    if not path.is_file():
        known = sorted(p.stem for p in Path(results_dir).glob("*.json"))
        raise BenchError(
            f"no result for run {run_id!r} in {results_dir} (known: {', '.join(known[-5:]) or 'none'}); "
            "pass --results-dir if it lives elsewhere"
        )
    return read_result_in(path, results_dir)


def republish(results_dir: Path) -> list[Path]:
    """Rewrite the results of a directory as :func:`write_result` publishes them today (artifact paths
    relative to the runs directory, no data roots or other local paths); returns the files changed.

    Only those fields change: the metrics, the sidecar and its sha256 are untouched, so ``bench verify``
    still holds. Every file is checked before any is written; each is written atomically.
    """
    results_dir = Path(results_dir)
    changed = []
    for path in result_paths(results_dir):
        before = read_result_in(path, results_dir)
        after = publishable(before, results_dir=results_dir)
        check_result(after, source=str(path))
        if after != before:
            changed.append((path, after))
    for path, after in changed:
        atomic_write_text(path, json.dumps(after, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return [path for path, _ in changed]
