"""``bench inspect RUN [--vs RUN]``: a run's worst queries, and where it wins or loses against another.

The work is in :mod:`bench.results.inspect_run`; this module only declares the options (no torch import).
"""

from __future__ import annotations

import argparse

from bench.core.config import DEFAULT_RESULTS_DIR

NAME = "inspect"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        NAME, help="a run's worst caption queries (top-5 retrieved) and its per-query gains against another run",
        description="List the caption queries whose recording a run ranks worst, with the top retrieved "
                    "recordings and their scores; with --vs, the captions that improved and worsened most "
                    "against another run on the same split. Needs the run's test_embeddings.npz.")
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run id, result .json or test_embeddings.npz")
    parser.add_argument("--vs", metavar="RUN", help="per-query difference against another run")
    parser.add_argument("-n", type=int, default=10, help="how many queries to list (default 10)")
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR),
                        help=f"where run ids are looked up (default {DEFAULT_RESULTS_DIR}/)")
    parser.add_argument("--runs-dir", metavar="DIR", help="where the runs' test embeddings are (default: runs/, "
                        "or the runs/ beside the results directory)")


def run(args: argparse.Namespace) -> int:
    from bench.results.inspect_run import run as inspect_run

    return inspect_run(args)
