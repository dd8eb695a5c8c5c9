"""``bench score FILE --dataset NAME``: score someone else's outputs against a split bench knows.

FILE is a TREC run, a DCASE submission CSV, or an ``.npz`` of embeddings or scores (the format is
detected from the content; ``--format`` forces it; grammar in docs/formats.md). The result is of
the usual schema with ``kind: "score"`` and a per-query sidecar, so ``bench compare``, ``bench
inspect``, ``bench verify`` and the leaderboard work on it. ``--template trec`` prints the split's
caption ids and the line format instead of scoring.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.core.config import DEFAULT_RESULTS_DIR, DEFAULT_RUNS_DIR
from bench.errors import ConfigError

NAME = "score"
FORMATS = ("trec", "dcase", "npz-embeddings", "npz-scores")  # bench.results.score_files.FORMATS (no numpy here)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help="score a run file, DCASE submission or .npz of embeddings/scores",
                            description="Score outside outputs against the ground truth of a dataset's split: a "
                                        "TREC run, a DCASE submission CSV, or an .npz of embeddings or scores "
                                        "(see docs/formats.md). Writes a result with kind 'score' and its "
                                        "per-query sidecar.")
    parser.add_argument("file", nargs="?", metavar="FILE", help="the file to score")
    parser.add_argument("--dataset", required=True, help="dataset whose split is the ground truth")
    parser.add_argument("--split", default="test", help="split to score against (default test)")
    parser.add_argument("--format", choices=FORMATS, help="force the format (default: detected from the content)")
    parser.add_argument("--template", choices=("trec", "dcase"),
                        help="print a template of this format with the split's ids instead of scoring")
    parser.add_argument("--name", help="the system's name in tables (default: the file name without suffix)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="dataset option, e.g. clotho.root=DIR (repeatable)")
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR),
                        help=f"where the result goes (default {DEFAULT_RESULTS_DIR}/)")
    parser.add_argument("--runs-dir", default=str(DEFAULT_RUNS_DIR),
                        help="where scored embeddings are kept for verify/export (default runs/)")
    parser.add_argument("--force", action="store_true", help="score a file that already has a result again")


def run(args: argparse.Namespace) -> int:
    from bench.core.console import attach_console
    from bench.core.option_values import parse_set_options
    from bench.core.registry import get_registry

    attach_console()
    registry = get_registry()
    set_options = parse_set_options(args.set)
    if args.template:
        from bench.runs.score_run import template

        print(template(args.template, args.dataset, set_options, registry, args.split), end="")
        return 0
    if not args.file:
        raise ConfigError("bench score needs a FILE (or --template trec|dcase)")
    from bench.results.score_files import missing_lines
    from bench.runs.score_run import score_file

    result, written = score_file(Path(args.file), args.dataset, set_options, registry=registry,
                                 results_dir=Path(args.results_dir), runs_dir=Path(args.runs_dir), fmt=args.format,
                                 name=args.name, split=args.split, force=args.force)
    info = result["score"]
    for line in missing_lines(info):
        print(line)
    for direction, keys in (info.get("unknown") or {}).items():
        print(f"{direction} {', '.join(keys)}: unknown (the file does not rank every caption's file)")
    for direction in info["directions"]:
        values = result["metrics"][direction]
        shown = " ".join(f"{k} {v * 100:.2f}" if k.startswith(("R@", "mAP")) else f"{k} {v:.1f}"
                         for k, v in values.items())
        print(f"{direction}: {shown}")
    print(f"{'wrote' if written else 'already scored as'} {Path(args.results_dir) / (result['run_id'] + '.json')}")
    return 0
