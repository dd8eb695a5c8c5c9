"""A published result names no path of the machine that made it.

A result file travels (pull requests to the leaderboard, papers, other machines), so what it says
about files must mean the same everywhere:

* ``artifacts`` (run directory, test embeddings) are paths relative to the runs directory,
  ``<run_id>/test_embeddings.npz``; readers join them to ``--runs-dir`` (:func:`artifact_path`).
  Older results recorded them absolute or relative to the working directory; both are read from
  the run id on, and an absolute path without the run id is outside any runs directory: refused.
* ``dataset.roots`` (where the data lay) is not published: the split fingerprints identify the
  data. The run directory's own ``config.json`` keeps the local absolute paths.
* Any other string that starts with, or holds, a directory bench knows (runs, results, data
  roots, the home directory, the working directory) names it by a placeholder (``$RUNS_DIR``,
  ``$RESULTS_DIR``, ``$DATA_ROOT_<member>``, ``$HOME``, ``.``); an absolute path bench does not know
  keeps only its last part (``…/name``).

:func:`absolute_paths` lists what is left; ``bench leaderboard --check`` refuses a result with any.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from bench.core.safe_paths import inside
from bench.errors import BenchError

ABSOLUTE = re.compile(r"^(?:/|~[/\\]?|[A-Za-z]:[\\/]|\\\\)")
"""A string that starts with an absolute path: POSIX, home-relative, a Windows drive or UNC share."""
_AFTER_EQUALS = re.compile(r"(?<==)(?:/|~/|[A-Za-z]:[\\/])[^\s'\",;]*")
"""An absolute path as an option's value inside a string (``--set clap.path=/models/x``)."""
ARTIFACT_KEYS = ("run_dir", "test_embeddings")


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


def absolute_paths(result: dict[str, Any]) -> list[str]:
    """``field: value`` for every string of the result that is an absolute path (empty: publishable)."""
    return [f"{where}: {value[:80]!r}" for where, value in _strings(result, "")
            if ABSOLUTE.match(value) or _AFTER_EQUALS.search(value)]


def relative_artifact(value: str, run_id: str) -> PurePosixPath:
    """An artifact path relative to the runs directory: from the run id on when it holds the run id
    (``/tmp/x/runs/<id>/test_embeddings.npz`` and ``runs/<id>/...`` both give ``<id>/...``), else as
    recorded if relative. An absolute path without the run id lies outside any runs directory."""
    path: PurePath = PureWindowsPath(value) if re.match(r"^[A-Za-z]:[\\/]", value) else PurePosixPath(value)
    parts = [p for p in path.parts if p not in ("/", "\\") and not p.endswith((":\\", ":/"))]
    if run_id in parts:
        parts = parts[parts.index(run_id):]
    elif ABSOLUTE.match(value):
        raise BenchError(f"artifact path {value[:120]!r} is outside the runs directory (run {run_id})")
    if not parts or ".." in parts:
        raise BenchError(f"artifact path {value[:120]!r} of run {run_id} is not a plain relative path")
    return PurePosixPath(*parts)


def artifact_path(result: dict[str, Any], key: str, runs_dirs: list[Path]) -> Path | None:
    """Where artifact ``key`` of a result is on this machine: the first of ``runs_dirs`` holding it;
    None when none does (or the result records none). Raises BenchError for a path outside them."""
    recorded = (result.get("artifacts") or {}).get(key)
    if not recorded:
        return None
    relative = relative_artifact(str(recorded), str(result.get("run_id", "")))
    for runs_dir in runs_dirs:
        candidate = inside(runs_dir, relative, what=f"artifact {key} of run {result.get('run_id')}")
        if candidate.exists():
            return candidate
    return None


def reader_runs_dirs(runs_dir: Path | str | None, results_dir: Path | str | None) -> list[Path]:
    """Where a reader looks for artifacts: ``--runs-dir`` when given; else ``runs/`` and the runs
    directory beside (or above) the results directory (``runs/results``, ``X/results`` + ``X/runs``)."""
    if runs_dir is not None:
        return [Path(runs_dir)]
    found = [Path("runs")]
    if results_dir is not None:
        parent = Path(results_dir).parent
        found += [parent, parent / "runs"]
    return list(dict.fromkeys(found))


def _placeholders(result: dict[str, Any], runs_dir: Path | None, results_dir: Path | None) -> list[tuple[str, str]]:
    named: list[tuple[str, str]] = []
    for member, root in sorted(((result.get("dataset") or {}).get("roots") or {}).items()):
        label = re.sub(r"[^A-Za-z0-9]+", "_", str(member)).upper()
        named.append((str(root), f"$DATA_ROOT_{label}"))
    for directory, label in ((runs_dir, "$RUNS_DIR"), (results_dir, "$RESULTS_DIR")):
        if directory is not None:
            named.append((str(Path(directory).expanduser().absolute()), label))
            named.append((os.path.realpath(Path(directory).expanduser()), label))
    named.append((str(Path.cwd()), "."))
    named.append((str(Path.home()), "$HOME"))
    # Longest first: a data root inside the home directory is named as the data root.
    return sorted({(d.rstrip("/"), label) for d, label in named if len(d.rstrip("/")) > 1},
                  key=lambda item: -len(item[0]))


def _scrub(text: str, named: list[tuple[str, str]]) -> str:
    for directory, label in named:
        text = re.sub(re.escape(directory) + r"(?=$|[/\\\s'\",;:)])", lambda _m, label=label: label, text)
    text = _AFTER_EQUALS.sub(lambda found: _last_part(found.group(0)), text)
    return _last_part(text) if ABSOLUTE.match(text) else text


def _last_part(path: str) -> str:
    tail = re.split(r"[/\\]", path.rstrip("/\\"))[-1]
    return f"…/{tail}" if tail and not ABSOLUTE.match(tail) else "…"


def _walk(value: Any, named: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        return _scrub(value, named)
    if isinstance(value, dict):
        return {key: _walk(item, named) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, named) for item in value]
    return value


def publishable(result: dict[str, Any], *, runs_dir: Path | None = None,
                results_dir: Path | None = None) -> dict[str, Any]:
    """A copy of ``result`` as it is published: artifacts relative to the runs directory, no
    ``dataset.roots``, every other local path named by a placeholder (see the module docstring)."""
    out = copy.deepcopy(result)
    named = _placeholders(out, runs_dir, results_dir)
    artifacts = out.pop("artifacts", None)
    if isinstance(out.get("dataset"), dict):
        out["dataset"].pop("roots", None)
    out = _walk(out, named)
    if isinstance(artifacts, dict):
        run_id = str(out.get("run_id", ""))
        out["artifacts"] = {key: str(relative_artifact(str(value), run_id)) if isinstance(value, str) else value
                            for key, value in artifacts.items()}
    return out
