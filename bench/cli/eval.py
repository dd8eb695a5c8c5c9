"""``bench eval``: score existing models (zero-shot CLAP, finished runs) without training.

``bench eval --model clap --dataset clotho`` scores a registered model; ``bench eval RUN_ID
--dataset audiocaps`` scores a finished run's best checkpoint on another benchmark. Comma lists of
run ids, models, datasets, protocols and seeds form a grid, as in ``bench run``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.core.config import DEFAULT_RESULTS_DIR, DEFAULT_RUNS_DIR, split_list
from bench.errors import ConfigError

NAME = "eval"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help="score existing models (zero-shot, or a finished run on another dataset)",
                            description="Score a registered retrieval model (--model clap) or finished runs (RUN_ID) "
                                        "on the test split of each dataset. Lists are comma-separated; every "
                                        "combination is scored.")
    parser.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="finished runs to score (their best.pt)")
    parser.add_argument("--model", help="registered model(s), e.g. clap (see `bench ls`)")
    parser.add_argument("--dataset", required=True, help="dataset(s) whose test split is scored")
    parser.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE",
                        help="model or dataset option, e.g. clap.model=DIR, clotho.root=DIR (repeatable)")
    parser.add_argument("--protocol", default="bench",
                        help="metric convention(s): bench (default), laion-clap, dcase (docs/protocols.md)")
    parser.add_argument("--seed", default="0", help="seed(s) for stochastic models, comma-separated (default 0)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers decoding audio")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR),
                        help=f"where result JSONs go (default {DEFAULT_RESULTS_DIR}/)")
    parser.add_argument("--runs-dir", default=str(DEFAULT_RUNS_DIR), help="where RUN_IDs live (default runs/)")
    parser.add_argument("--force", action="store_true", help="score combinations that already have results again")
    parser.add_argument("--no-leaderboard", action="store_true", help="do not print the benchmark's table")


def targets_of(args: argparse.Namespace, registry, set_options: dict) -> list:
    """The Targets of a command line: run ids first, then models with their --set options."""
    from bench.core.config import component_spec
    from bench.runs.eval_run import Target

    run_ids = [rid for text in args.run_ids for rid in split_list(text)]
    models = split_list(args.model)
    if not run_ids and not models:
        raise ConfigError("bench eval needs RUN_ID(s) or --model NAME (e.g. --model clap)")
    targets = [Target(run_id=rid) for rid in run_ids]
    for name in models:
        spec = component_spec(registry, "model", name, set_options.get(name, {}))
        targets.append(Target(model=name, options=spec.options))
    return targets


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in split_list(text)]
    except ValueError:
        raise ConfigError(f"--seed {text!r}: expected an integer or a comma-separated list of integers") from None


def run(args: argparse.Namespace) -> int:
    from bench.core.config import DatasetSpec
    from bench.core.console import attach_console
    from bench.core.option_values import parse_set_options
    from bench.core.registry import get_registry
    from bench.evaluation.protocols import check_protocol

    attach_console()
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size}: use at least 1")
    registry = get_registry()
    set_options = parse_set_options(args.set)
    protocols = [check_protocol(p) for p in split_list(args.protocol)]
    datasets = split_list(args.dataset)
    seeds = _seeds(args.seed)
    members = [m for d in datasets for m in DatasetSpec.members_of(d)]
    stray = sorted(set(set_options) - set(split_list(args.model)) - set(members))
    if stray:
        raise ConfigError(f"--set {stray[0]}.…: {stray[0]!r} is neither a model nor a dataset of this command")
    # Every problem at once, before torch is imported (bench.core.preflight, as bench run does).
    from bench.core.preflight import component_problems, raise_if_problems

    problems = [p for name in split_list(args.model)
                for p in component_problems(registry, "model", name, set_options.get(name, {}))]
    problems += [p for m in dict.fromkeys(members) for p in component_problems(registry, "dataset", m,
                                                                                set_options.get(m, {}))]
    raise_if_problems(problems)
    targets = targets_of(args, registry, set_options)
    from bench.runs.eval_run import evaluate_target

    results = []
    for target in targets:
        for dataset in datasets:
            for seed in seeds:
                results += evaluate_target(target, dataset, set_options, protocols=protocols, seed=seed,
                                           batch_size=args.batch_size, num_workers=args.num_workers,
                                           device=args.device, results_dir=Path(args.results_dir),
                                           runs_dir=Path(args.runs_dir), force=args.force, registry=registry)
    for result in results:
        t2a, a2t = result["metrics"]["t2a"], result["metrics"]["a2t"]
        print(f"{result['run_id']}: t2a mAP@10 {t2a['mAP@10'] * 100:.2f} R@1 {t2a['R@1'] * 100:.2f} | "
              f"a2t mAP@10 {a2t['mAP@10'] * 100:.2f} R@1 {a2t['R@1'] * 100:.2f} ({result['protocol']})")
    if not args.no_leaderboard and results:
        from bench.cli.run import _show_leaderboard

        try:
            _show_leaderboard(Path(args.results_dir), results[-1])
        except Exception as exc:  # the table is a courtesy; the results are written
            print(f"(leaderboard table unavailable: {exc})")
    return 0
