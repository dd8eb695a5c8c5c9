"""``bench runs``: the run directories with size, status and result; ``bench runs clean`` frees disk.

``bench runs clean`` removes, from every FINISHED run, the checkpoints its ``train.keep`` policy
drops (``--keep`` overrides it for this command); ``--dry-run`` lists them with their sizes and
removes nothing. Unfinished runs keep everything: ``bench run --resume`` needs their ``last.pt``.
No torch here: both commands answer at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import ConfigError

NAME = "runs"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help="list run directories (size, status, result); `bench runs clean` frees disk",
                            description="List run directories with size, status and result, or remove the "
                                        "checkpoints that finished runs do not need (clean).")
    parser.add_argument("action", nargs="?", choices=["list", "clean"], default="list",
                        help="list (default) or clean")
    parser.add_argument("--runs-dir", default="runs", help="the runs directory (default runs/)")
    parser.add_argument("--dry-run", action="store_true", help="clean: list what would be removed, remove nothing")
    parser.add_argument("--keep", choices=["best", "last", "all", "none"],
                        help="clean: this policy instead of each run's own train.keep (default best)")


def run_dirs(runs_dir: Path) -> list[Path]:
    """Directories of ``runs_dir`` that are runs (they have a config.json), oldest first."""
    return sorted(p.parent for p in Path(runs_dir).glob("*/config.json"))


def run(args: argparse.Namespace) -> int:
    runs_dir = Path(args.runs_dir)
    if not runs_dir.is_dir():
        raise ConfigError(f"{runs_dir}: no runs directory here; pass --runs-dir DIR (bench run writes to runs/)")
    if args.action == "clean":
        return _clean(runs_dir, keep=args.keep, dry_run=args.dry_run)
    if args.dry_run or args.keep:
        raise ConfigError("--dry-run and --keep belong to `bench runs clean`")
    return _list(runs_dir)


def _list(runs_dir: Path) -> int:
    from bench.runs.retention import human_size, run_summary

    summaries = [run_summary(d) for d in run_dirs(runs_dir)]
    if not summaries:
        print(f"no runs in {runs_dir}")
        return 0
    rows = [("run", "status", "size", "checkpoints", "test t2a mAP@10")]
    for s in summaries:
        result = f"{100 * s['result']:.2f}" if s["result"] is not None else "-"
        rows.append((s["run_id"], s["status"], human_size(s["size"]), ",".join(s["checkpoints"]) or "-", result))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    total = sum(s["size"] for s in summaries)
    print(f"{len(summaries)} runs, {human_size(total)} in {runs_dir}; `bench runs clean --dry-run` shows what "
          f"finished runs need not keep")
    return 0


def _clean(runs_dir: Path, *, keep: str | None, dry_run: bool) -> int:
    from bench.runs.retention import file_size, human_size, policy_of, removable

    total, count = 0, 0
    for run_dir in run_dirs(runs_dir):
        policy = keep or policy_of(run_dir)
        for path in removable(run_dir, policy):
            size = file_size(path)
            if dry_run:
                print(f"would remove {path} ({human_size(size)}, train.keep={policy})")
            else:
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
                print(f"removed {path} ({human_size(size)})")
            total, count = total + size, count + 1
    verb = "would free" if dry_run else "freed"
    print(f"{verb} {human_size(total)} ({count} file{'s' if count != 1 else ''}) in {runs_dir}"
          + ("; run without --dry-run to remove them" if dry_run and count else ""))
    return 0
