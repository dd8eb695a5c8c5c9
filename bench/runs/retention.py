"""Which checkpoints a finished run keeps (``--set train.keep=best|last|all|none``).

A finished PaSST run holds ``best.pt`` (the weights, ~346 MB for 86 M fp32 parameters) and
``last.pt`` (weights plus AdamW's two moments: ~3x that, ~1 GB). Only ``best.pt`` is read once a
run has finished (``--init``, ``bench eval``, distillation teachers); ``last.pt`` is there to
resume an interrupted run. So the default, ``best``, removes ``last.pt`` when the run's result is
written; ``last`` keeps only ``last.pt``, ``all`` keeps both, ``none`` neither (the result, test
embeddings and logs always stay). Unfinished runs are never touched: they need ``last.pt`` to
resume.

Standard library only: ``bench runs`` lists and cleans without importing torch.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("bench")
POLICIES: dict[str, tuple[str, ...]] = {  # policy -> checkpoint files a finished run drops
    "best": ("last.pt",),
    "last": ("best.pt",),
    "all": (),
    "none": ("best.pt", "last.pt"),
}
DEFAULT_POLICY = "best"


def is_finished(run_dir: Path) -> bool:
    """A run is finished once its result is in its directory (bench.runs.run writes it last)."""
    return (Path(run_dir) / "result.json").is_file()


def policy_of(run_dir: Path) -> str:
    """The ``train.keep`` a run was started with (runs from before the setting: the default)."""
    try:
        keep = json.loads((Path(run_dir) / "config.json").read_text())["config"]["train"].get("keep")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return DEFAULT_POLICY
    return keep if keep in POLICIES else DEFAULT_POLICY


def removable(run_dir: Path, keep: str | None = None) -> list[Path]:
    """The checkpoint files ``keep`` (default: the run's own policy) removes from a FINISHED run."""
    run_dir = Path(run_dir)
    if not is_finished(run_dir):
        return []
    policy = keep or policy_of(run_dir)
    if policy not in POLICIES:
        raise ValueError(f"train.keep={policy!r}: expected one of {', '.join(POLICIES)}")
    return [run_dir / name for name in POLICIES[policy] if (run_dir / name).is_file()]


def apply_retention(run_dir: Path, keep: str) -> list[tuple[Path, int]]:
    """Remove what ``keep`` drops from a finished run; returns ``(path, bytes)`` of each removed file."""
    removed = []
    for path in removable(run_dir, keep):
        size = file_size(path)
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append((path, size))
    if removed:
        log.info("train.keep=%s: removed %s (%s); `bench runs` lists run directories and their sizes", keep,
                 ", ".join(p.name for p, _ in removed), human_size(sum(s for _, s in removed)))
    return removed


def file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def dir_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        total += sum(file_size(Path(root) / name) for name in files)
    return total


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def run_summary(run_dir: Path) -> dict[str, Any]:
    """What ``bench runs`` shows of one run directory: status, size, checkpoints, test t2a mAP@10."""
    run_dir = Path(run_dir)
    summary: dict[str, Any] = {"run_id": run_dir.name, "size": dir_size(run_dir), "result": None,
                               "checkpoints": [n for n in ("best.pt", "last.pt") if (run_dir / n).is_file()]}
    if is_finished(run_dir):
        summary["status"] = "finished"
        try:
            result = json.loads((run_dir / "result.json").read_text())
            summary["result"] = float(result["metrics"]["t2a"]["mAP@10"])
        except (OSError, ValueError, KeyError, TypeError):
            summary["status"] = "finished (unreadable result.json)"
    elif (run_dir / "last.pt").is_file():
        summary["status"] = "unfinished (resumable)"
    else:
        summary["status"] = "unfinished (no checkpoint yet)"
    return summary
