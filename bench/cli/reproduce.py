"""``bench reproduce``: does a fresh run give the committed numbers, bit for bit?

CI re-runs the default benchmark into a temporary directory and calls
``bench reproduce NEW_RESULT.json --against leaderboard/results``; every metric that differs is
named with both values. ``--replace`` instead moves fresh results into the committed directory,
removing the committed results of the same combination and seed they supersede (how
``leaderboard/reproduce.sh`` refreshes the cheap results after a code change).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bench.errors import ConfigError

NAME = "reproduce"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help="check fresh results against the committed ones, bit for bit",
                            description="Check fresh results against the committed ones: every metric must be "
                                        "identical.")
    parser.add_argument("results", nargs="+", metavar="RESULT", help="fresh result JSON files (or directories)")
    parser.add_argument("--against", default="leaderboard/results",
                        help="the committed results directory, or one result file to compare with directly")
    parser.add_argument("--replace", action="store_true",
                        help="move the fresh results into --against, replacing those they supersede")


def _result_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"{path}: no such result file or directory")
    if not files:
        raise ConfigError(f"no result files in {', '.join(paths)}")
    return files


def _own_files(result: dict, directory: Path) -> list[Path]:
    """A result's JSON and the sidecar it names, exactly (never a glob: run id "a" must not take "ab")."""
    from bench.core.safe_paths import inside

    names = [f"{result['run_id']}.json", *([str(result["per_query"]["file"])]
                                             if isinstance(result.get("per_query"), dict) else [])]
    return [path for path in (inside(directory, name, what="result file") for name in names) if path.is_file()]


def run(args: argparse.Namespace) -> int:
    from bench.core.safe_paths import inside
    from bench.results.files import read_result, read_results
    from bench.results.reproduce import matching_committed, metric_mismatches

    against = Path(args.against)
    # --against FILE compares with that one result, whatever its configuration (benchmarks/determinism.sh).
    committed = [read_result(against)] if against.is_file() else read_results(against)
    failed = False
    for path in _result_files(args.results):
        new = read_result(path)
        old = committed[0] if against.is_file() else matching_committed(new, committed)
        if args.replace:
            if old is not None:
                for stale in _own_files(old, against):
                    stale.unlink()
            for produced in _own_files(new, path.parent):  # the JSON and its sidecar
                shutil.copy2(produced, inside(against, produced.name, what="committed result"))
            print(f"{new['run_id']}: now committed" + (f" (replaces {old['run_id']})" if old else ""))
            continue
        if old is None:
            print(f"{path}: no committed result of combination {new.get('combination')} seed {new.get('seed')} "
                  f"in {against}; commit one with `bench reproduce {path} --replace`")
            failed = True
            continue
        mismatches = metric_mismatches(new, old)
        if mismatches:
            failed = True
            print(f"{new['run_id']} does not reproduce {old['run_id']} ({len(mismatches)} metric(s) differ):")
            for line in mismatches:
                print(f"  {line}")
            threads = [(r.get("provenance", {}).get("numerics") or {}).get("torch_threads",
                        (r.get("timings") or {}).get("torch_threads")) for r in (old, new)]
            if threads[0] != threads[1]:
                print(f"  (the committed result used {threads[0]} torch threads, this one {threads[1]}: "
                      "CPU results are bit-identical only at the same thread count; set OMP_NUM_THREADS)")
        else:
            print(f"{new['run_id']} reproduces {old['run_id']}: every metric is identical")
    return 1 if failed else 0
