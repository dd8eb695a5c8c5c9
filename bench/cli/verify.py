"""``bench verify RESULT|DIR``: recompute a result's metrics from its stored evidence.

The work is in :mod:`bench.results.verify`; this module only declares the options (no torch import).
"""

from __future__ import annotations

import argparse

NAME = "verify"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        NAME, help="recompute a result's metrics from its test embeddings and per-query sidecar",
        description="Recompute every metric of a result JSON from the run's stored test embeddings (where "
                    "they are still here) and from its per-query sidecar, and compare them with the JSON "
                    "exactly. Prints the first mismatch or 'verified'; for a directory, also lists the "
                    "results that have neither. Exit 0: all verified; 1: a mismatch.")
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", nargs="+", metavar="RESULT", help="result .json files or directories of them")
    parser.add_argument("--embeddings", metavar="NPZ", help="the run's test_embeddings.npz (one RESULT only)")
    parser.add_argument("--runs-dir", metavar="DIR", help="where the runs' directories are: result artifacts are "
                        "relative to it (default: runs/, or the runs/ beside the results directory)")
    parser.add_argument("--write-sidecar", action="store_true",
                        help="backfill: write the per-query sidecar of an older RESULT from its embeddings "
                             "(after checking they reproduce its metrics) and add `per_query` to its JSON")


def run(args: argparse.Namespace) -> int:
    from bench.results.verify import run as verify_run

    return verify_run(args)
