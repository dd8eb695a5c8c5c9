"""``bench compare A B [C ...]``: paired significance tests and CIs of differences on the same queries.

The work is in :mod:`bench.results.compare`; this module only declares the options, without importing
numpy, scipy or torch, so that building the CLI parser (``bench ls``) stays fast.
"""

from __future__ import annotations

import argparse

from bench.core.config import DEFAULT_RESULTS_DIR

NAME = "compare"

# The defaults of bench.results.stats (N_PERMUTATIONS, N_BOOTSTRAP, ALPHA), repeated here so the parser
# does not import scipy; tests/test_cli_issue12.py keeps them equal.
N_PERMUTATIONS = 10_000
N_BOOTSTRAP = 2000
ALPHA = 0.05


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        NAME, help="compare runs or seed groups query by query (CI of the difference, paired test)",
        description="Compare systems on the same test queries: per metric, the difference A - B with a 95%% "
                    "paired bootstrap CI and the p-value of a two-sided paired randomisation test; Holm-adjusted "
                    "when more than two systems are compared. A SYSTEM is a result .json, a run id, "
                    "comma-separated seed runs, or a combination id (all its seeds).")
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("systems", nargs="+", metavar="SYSTEM",
                        help="run id, result .json, comma-separated seed runs, or a combination id")
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR),
                        help=f"where run ids and combination ids are looked up (default {DEFAULT_RESULTS_DIR}/)")
    parser.add_argument("--runs-dir", metavar="DIR", help="where the runs' test embeddings are, for results "
                        "without a per-query sidecar (default: runs/, or the runs/ beside the results directory)")
    parser.add_argument("--json", action="store_true", help="print the JSON form instead of the table")
    parser.add_argument("--t-test", action="store_true", help="also report a paired t-test p-value")
    parser.add_argument("--permutations", type=int, default=N_PERMUTATIONS,
                        help=f"random sign flips of the randomisation test (default {N_PERMUTATIONS}; exact "
                             "when 2^n is smaller)")
    parser.add_argument("--bootstrap", type=int, default=N_BOOTSTRAP,
                        help=f"bootstrap resamples of the CI (default {N_BOOTSTRAP})")
    parser.add_argument("--alpha", type=float, default=ALPHA, help=f"significance level (default {ALPHA})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (results are reproducible)")


def run(args: argparse.Namespace) -> int:
    from bench.results.compare import run as compare_run

    return compare_run(args)
