"""``bench status [GRID]``: where each combination of a submitted grid is: pending, running, done, failed.

GRID is the log folder ``bench run --launcher slurm`` printed (default: the newest under
``runs/slurm/``). Everything comes from files: the folder's ``submissions.json`` (which job runs
which combination), submitit's logs and result pickles in it, the results directory (done) and the
run directories (the epoch a running job reached). No database, no scheduler query.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
from pathlib import Path
from typing import Any

from bench.errors import ConfigError

NAME = "status"
SUBMISSIONS = "submissions.json"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help="pending/running/done/failed of each combination of a submitted grid",
                            description="One line per combination of a grid submitted with --launcher slurm.")
    parser.add_argument("grid", nargs="?", metavar="GRID",
                        help="the grid's log folder (default: the newest under runs/slurm/)")
    parser.add_argument("--runs-dir", default="runs", help="where to look for runs/slurm/ (default runs/)")


def run(args: argparse.Namespace) -> int:
    folder = _grid_folder(args.grid, Path(args.runs_dir))
    for line in status_lines(folder):
        print(line)
    return 0


def _grid_folder(grid: str | None, runs_dir: Path) -> Path:
    if grid:
        folder = Path(grid)
        if not (folder / SUBMISSIONS).is_file():
            raise ConfigError(f"{folder}: not a grid's log folder (no {SUBMISSIONS}); `bench run --launcher slurm` "
                              f"prints the folder it submits to")
        return folder
    found = sorted((runs_dir / "slurm").glob(f"*/{SUBMISSIONS}"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError(f"no submitted grid under {runs_dir / 'slurm'}; name its log folder: bench status FOLDER")
    return found[-1].parent


def status_lines(folder: Path) -> list[str]:
    """One line per combination and seed; the latest submission of each counts."""
    try:
        records = json.loads((folder / SUBMISSIONS).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder / SUBMISSIONS}: unreadable ({exc}); resubmit the grid to rewrite it") from None
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        latest[(record["combination"], record["seed"])] = record
    finished = _finished(latest.values())
    counts: dict[str, int] = {}
    lines = []
    for key, record in latest.items():
        state, detail = _state(folder, record, finished.get(key))
        counts[state] = counts.get(state, 0) + 1
        lines.append(f"{state:<8} {record['label']}: {detail}")
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return [*lines, f"{len(latest)} combination(s) in {folder}: {summary}"]


def _finished(records: Any) -> dict[tuple[str, int], dict[str, Any]]:
    """Finished results of the grid's combinations, from their results directories."""
    from bench.results.files import read_results_report

    out: dict[tuple[str, int], dict[str, Any]] = {}
    for results_dir in {r.get("results_dir") for r in records if r.get("results_dir")}:
        results, _unreadable = read_results_report(Path(results_dir))
        for result in results:
            if result.get("kind", "train") == "train":
                out[(result.get("combination"), result.get("seed"))] = result
    return out


def _state(folder: Path, record: dict[str, Any], result: dict[str, Any] | None) -> tuple[str, str]:
    job = record["job_id"]
    if result is not None:
        t2a = ((result.get("metrics") or {}).get("t2a") or {}).get("mAP@10")
        score = f"t2a mAP@10 {100 * t2a:.2f}" if isinstance(t2a, (int, float)) else "no t2a mAP@10"
        return "done", f"{score} (job {job}, run {result.get('run_id')})"
    outcome = _job_outcome(folder, job)
    stderr = folder / f"{job}_0_log.err"
    if outcome is not None and outcome[0] != "success":
        return "failed", f"{_last_line(str(outcome[1]))} (job {job}; log {stderr})"
    stdout = folder / f"{job}_0_log.out"
    started = _read(stdout) + _read(stderr)
    if "Starting with JobEnvironment" not in started:
        return "pending", f"job {job} has not started"
    node = re.findall(r"hostname=([^,\s)]+)", started)
    epoch = _epoch(record)
    where = f"job {job}, node {node[-1] if node else '?'}, " + (f"epoch {epoch}" if epoch else "before epoch 1")
    if outcome is not None:  # ended well, but no result where it should be
        return "failed", f"the job ended without a result in {record.get('results_dir')} ({where}; log {stderr})"
    return "running", where


def _job_outcome(folder: Path, job: str) -> tuple[str, Any] | None:
    """submitit's result pickle: ("success", value) or ("error", traceback text); None while it runs."""
    path = folder / f"{job}_0_result.pkl"
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle)  # written by submitit for this user's own job
    except Exception as exc:  # a half-written or foreign pickle: say so rather than guess
        return ("error", f"unreadable result pickle {path.name}: {exc}")


def _epoch(record: dict[str, Any]) -> str | None:
    """The last ``epoch N/M`` the combination's newest unfinished run directory logged."""
    runs_dir = Path(record.get("runs_dir") or "runs")
    for config_path in sorted(runs_dir.glob("*/config.json"), reverse=True):
        try:
            data = json.loads(config_path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("combination") == record["combination"] and data.get("seed") == record["seed"]:
            epochs = re.findall(r"epoch (\d+/\d+)", _read(config_path.parent / "log.txt"))
            return epochs[-1] if epochs else None
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no message)"
