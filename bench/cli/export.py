"""``bench export RESULT_OR_RUN --format trec|dcase|npz|npz-scores``: rankings or embeddings in outside formats.

So that bench's numbers can be checked with trec_eval, ranx, pytrec_eval or the DCASE scripts, and
so that ``bench score`` of the export gives the result's metrics back. The work is
:mod:`bench.results.export`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.core.config import DEFAULT_RESULTS_DIR

NAME = "export"
FORMATS = ("trec", "dcase", "npz", "npz-embeddings", "npz-scores")  # bench.results.export.EXPORT_FORMATS


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help="write a run's rankings or embeddings as TREC, DCASE CSV or .npz",
                            description="Write a finished run's (or eval's) test rankings or embeddings in a "
                                        "format outside tools read (grammar in docs/formats.md). RESULT_OR_RUN is a "
                                        "result .json, a run id, a run directory or a test_embeddings.npz.")
    parser.add_argument("target", metavar="RESULT_OR_RUN")
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="trec (run file), dcase (submission CSV, t2a top 10), npz (embeddings), npz-scores")
    parser.add_argument("--output", "-o", help="file to write (default: <run id> plus the format's suffix)")
    parser.add_argument("--direction", default="both", choices=("t2a", "a2t", "both"),
                        help="trec only: which queries to write (default both)")
    parser.add_argument("--depth", type=int, help="trec only: documents per query (default: all)")
    parser.add_argument("--qrels", metavar="FILE", help="trec only: also write the relevance judgements here")
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR),
                        help=f"where run ids are looked up (default {DEFAULT_RESULTS_DIR}/)")


def run(args: argparse.Namespace) -> int:
    from bench.results.export import default_output, export, resolve

    source = resolve(args.target, Path(args.results_dir))
    output = Path(args.output) if args.output else default_output(source, args.format)
    for path in export(source, args.format, output, direction=args.direction, depth=args.depth,
                       qrels=Path(args.qrels) if args.qrels else None):
        print(f"wrote {path}")
    return 0
