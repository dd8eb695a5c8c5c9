"""The ``bench`` command line: ``ls``, ``run``, ``validate``, ``fuse``, ``leaderboard``, ``presets``.

User mistakes (a :class:`bench.errors.BenchError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

from bench.cli.run import DEFAULTS, cmd_run
from bench.core.config import DEFAULT_RESULTS_DIR
from bench.errors import BenchError, ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="Benchmark harness for language-based audio retrieval.",
        epilog="Run `bench COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ls = sub.add_parser("ls", help="list every component by kind, with the plugin that provides it")
    ls.add_argument("--options", action="store_true", help="also show each component's options and defaults")

    run = sub.add_parser("run", help="train and evaluate every combination of the given components",
                         description="Train and evaluate every combination (the grid) of datasets, encoders, text "
                                     "encoders, losses and seeds. Lists are comma-separated.")
    run.add_argument("--dataset",
                     help=f"dataset(s); a+b trains on the union, tests on b (default {DEFAULTS['dataset']})")
    run.add_argument("--encoder", help=f"audio encoder(s) (default {DEFAULTS['encoder']})")
    run.add_argument("--text-encoder", help=f"text encoder(s) (default {DEFAULTS['text_encoder']})")
    run.add_argument("--loss", help=f"loss(es) (default {DEFAULTS['loss']})")
    run.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE",
                     help="component option, e.g. passt.pretrained=false, or train.KEY=VALUE (repeatable); "
                          "STAGE:NAME.KEY=VALUE sets it in one stage of a pipeline preset only")
    run.add_argument("--preset", help="a preset name (see `bench presets`) or a .toml path; flags override it")
    run.add_argument("--epochs", type=int)
    run.add_argument("--batch-size", type=int)
    run.add_argument("--lr", type=float, help="learning rate of pretrained encoders")
    run.add_argument("--head-lr", type=float, help="learning rate of new layers and scratch encoders")
    run.add_argument("--proj-dim", type=int, help="shared embedding dimension (default 1024)")
    run.add_argument("--num-workers", type=int, help="DataLoader workers")
    run.add_argument("--seed", help="seed(s), comma-separated (default 0)")
    run.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    run.add_argument("--results-dir", help=f"where result JSONs go (default {DEFAULT_RESULTS_DIR}/; "
                                           "--results-dir leaderboard/results adds them to the leaderboard)")
    run.add_argument("--runs-dir", help="where run directories go (default runs/)")
    run.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run (or `latest`)")
    run.add_argument("--force", action="store_true", help="run combinations that already have results again")
    run.add_argument("--teachers", help="stage-1 run ids for --loss distill (ensemble of M teachers)")
    run.add_argument("--init", metavar="RUN_ID", help="initialise the student from this run's best checkpoint")
    run.add_argument("--launcher", default="none", metavar="NAME",
                     help="local (default; also `none`), torchrun (start --nproc processes, DDP), slurm (one job "
                          "per combination, options --set slurm.KEY=VALUE), or a plugin's (`bench ls`)")
    run.add_argument("--dry-run", action="store_true",
                     help="with --launcher slurm: print the sbatch script(s) instead of submitting; with --preset: "
                          "print every configuration (each stage of a pipeline) and run nothing")
    run.add_argument("--nproc", type=int, default=None, help="processes per node for --launcher torchrun")
    run.add_argument("--logger", metavar="NAME[,NAME]",
                     help="also log to these loggers, e.g. tensorboard,wandb (options: --set wandb.mode=offline); "
                          "log.txt and history.png are always written")
    run.add_argument("--no-leaderboard", action="store_true", help="do not print the benchmark's table")

    val = sub.add_parser("validate", help="check a dataset's files and captions without training")
    val.add_argument("--dataset", required=True)
    val.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE")
    val.add_argument("--sample-rate", type=int, default=None, help="also check resampling to this rate")

    fuse = sub.add_parser("fuse", help="late fusion of the test scores of several runs")
    fuse.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    fuse.add_argument("--method", choices=["combsum", "rrf"], default="combsum")
    fuse.add_argument("--weights", help="comma-separated CombSUM weights, one per run")
    fuse.add_argument("--k", type=float, default=60.0, help="RRF constant (default 60)")
    fuse.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR),
                      help=f"where the runs' results are and the fusion's goes (default {DEFAULT_RESULTS_DIR}/)")
    fuse.add_argument("--runs-dir", metavar="DIR", help="where the runs' directories (test embeddings) are "
                      "(default: runs/, or the runs/ beside the results directory)")
    fuse.add_argument("--no-leaderboard", action="store_true")
    fuse.add_argument("--force", action="store_true", help="write a new result even if this fusion exists")

    board = sub.add_parser("leaderboard", help="render leaderboard/README.md from the result files",
                           description="Render the markdown leaderboard, the static site (--html) or bar charts "
                                       "(--plot) from result files. Only what is asked for is written: the "
                                       "markdown goes to --output, or to leaderboard/README.md when the results "
                                       "are the committed ones (leaderboard/results) and --html is not given.")
    board.add_argument("--results-dir", default="leaderboard/results")
    board.add_argument("--output", "--out", default=None, metavar="FILE",
                       help="where the markdown goes (default: leaderboard/README.md for leaderboard/results; "
                            "printed for other results)")
    board.add_argument("--check", action="store_true", help="exit 1 if the markdown (or, with --html, the site) "
                       "is not current")
    board.add_argument("--plot", metavar="DIR", help="also draw one bar chart per benchmark into DIR")
    board.add_argument("--html", metavar="DIR", help="write the static leaderboard site into DIR "
                       "(with --check: check it is current); alone, nothing else is written")

    presets = sub.add_parser("presets", help="list the presets `bench run --preset` accepts")
    presets.add_argument("--show", metavar="NAME", help="print the configuration of every run (every stage of a "
                         "pipeline) the preset makes, options resolved; the same as bench run --preset NAME --dry-run")
    for module in _command_modules():
        module.add_parser(sub)
    return parser


# Further subcommands live in their own modules, each with ``NAME`` (the subcommand),
# ``add_parser(subparsers)`` and ``run(args) -> int``; listing a module here is all it takes.
COMMAND_MODULES: tuple[str, ...] = (
    "bench.cli.reproduce",
    "bench.cli.compare",
    "bench.cli.verify",
    "bench.cli.inspect",
    "bench.cli.eval",
    "bench.cli.runs",
    "bench.cli.status",
    "bench.cli.score",
    "bench.cli.export",
)


def _command_modules() -> list:
    import importlib

    return [importlib.import_module(name) for name in COMMAND_MODULES]


def cmd_ls(args: argparse.Namespace) -> int:
    import inspect

    from bench.core.registry import HOOK_OF_KIND, get_registry

    registry = get_registry()
    for kind in HOOK_OF_KIND:
        print(f"{kind.replace('_', ' ')}{'es' if kind.endswith('s') else 's'}:")
        names = registry.names(kind)
        if not names:
            print("  (none)")
        for name in names:
            entry = registry.entries[kind][name]
            plugin = f" [{entry.plugin}]" if entry.plugin != name else ""
            print(f"  {name:<16} {entry.distribution} {entry.version}{plugin}")
            if args.options:
                for key, default in entry.option_defaults().items():
                    shown = "(required)" if default is inspect.Parameter.empty else repr(default)
                    print(f"      {name}.{key} = {shown}")
    failed = [status for status in registry.plugins.values() if not status.ok]
    if failed:
        print("failed plugins:")
        for status in failed:
            print(f"  {status.name:<16} {status.distribution} {status.version}: {status.error}")
    for status in registry.plugins.values():
        if status.ok and status.warning:
            print(f"warning: plugin {status.name} ({status.distribution} {status.version}) {status.warning}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.core.config import DatasetSpec, dataset_spec, parse_set_options
    from bench.core.registry import get_registry
    from bench.data.full_report import full_reports, n_bad, report_lines

    registry = get_registry()
    set_options = parse_set_options(args.set)
    members = DatasetSpec.members_of(args.dataset)
    stray = sorted(set(set_options) - set(members))
    if stray:
        raise ConfigError(f"--set {stray[0]}.…: {stray[0]!r} is not part of dataset {args.dataset!r}")
    skipping = all((set_options.get(m, {}).get("on_error") or "raise") == "skip" for m in members)
    # Every bad entry, including those a dataset would refuse while parsing (bench.data.full_report).
    reports = full_reports(registry, dataset_spec(registry, args.dataset, set_options), sample_rate=args.sample_rate)
    for line in report_lines(reports):
        print(line)
    bad_total = n_bad(reports)
    if bad_total:
        advice = ("a run skips them and lists them in its result" if skipping else
                  f"a run refuses this dataset unless --set {members[-1]}.on_error=skip")
        print(f"{bad_total} bad entr{'y' if bad_total == 1 else 'ies'}: {advice}")
        return 1
    print("dataset is valid")
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    from bench.cli.run import _show_leaderboard
    from bench.core.console import attach_console
    from bench.results.fusion import fuse_runs

    attach_console()

    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    except ValueError:
        raise ConfigError(f"--weights {args.weights!r}: expected comma-separated numbers, one per run") from None
    result = fuse_runs(args.run_ids, method=args.method, weights=weights, k=args.k, results_dir=Path(args.results_dir),
                       force=args.force, runs_dir=Path(args.runs_dir) if args.runs_dir else None)
    score = result["metrics"]["t2a"]["mAP@10"] * 100
    print(f"fused {len(args.run_ids)} runs with {args.method}: t2a mAP@10 {score:.2f}"
          f" (result {result['run_id']})")
    if not args.no_leaderboard:
        _show_leaderboard(Path(args.results_dir), result)
    return 0


def _markdown_target(args: argparse.Namespace) -> Path | None:
    """Where ``bench leaderboard`` writes (or checks) the markdown; None: nowhere.

    The committed table (leaderboard/README.md) is derived from the committed results only: other
    results, or a site asked for alone, never overwrite it.
    """
    from bench.leaderboard import tables as leaderboard

    if args.output:
        return Path(args.output)
    committed = Path(args.results_dir).resolve() == leaderboard.DEFAULT_RESULTS_DIR.resolve()
    return leaderboard.DEFAULT_OUTPUT if committed and not args.html else None


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.leaderboard import tables as leaderboard

    results_dir = Path(args.results_dir)
    output = _markdown_target(args)
    if args.html:  # first, so that a result the markdown refuses is skipped here with a warning
        from bench.leaderboard.site import html_command

        html_command(results_dir, Path(args.html), check=args.check)
    if args.check:
        if output is not None:
            leaderboard.check(results_dir, output)
            print(f"{output} is current")
        elif not args.html:
            raise ConfigError(f"--check: name the markdown file to check with --output (leaderboard/README.md "
                              f"holds only {leaderboard.DEFAULT_RESULTS_DIR})")
        return 0
    if output is not None:
        print(f"wrote {leaderboard.write(results_dir, output)}")
    elif not args.html:
        print(leaderboard.render_dir(results_dir)[0], end="")
        print(f"bench leaderboard: printed the table of {results_dir}; --output FILE writes it "
              f"({leaderboard.DEFAULT_OUTPUT} holds only {leaderboard.DEFAULT_RESULTS_DIR})", file=sys.stderr)
    if args.plot:
        from bench.results.files import read_results_report

        for image in leaderboard.plot(read_results_report(results_dir)[0], Path(args.plot)):
            print(f"wrote {image}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from bench.core.config import available_presets, load_preset

    if args.show:
        from bench.cli.run import print_configs
        from bench.core.registry import get_registry

        print_configs(_parser().parse_args(["run", "--preset", args.show]), get_registry())
        return 0

    for name in available_presets():
        preset = load_preset(name)
        stages = " -> ".join(stage["name"] for stage in preset["stages"])
        print(f"{name:<20} {preset.get('description', '')}" + (f" [pipeline: {stages}]" if stages else ""))
    return 0


COMMANDS = {"ls": cmd_ls, "run": cmd_run, "validate": cmd_validate, "fuse": cmd_fuse,
            "leaderboard": cmd_leaderboard, "presets": cmd_presets}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from bench import __version__

        print(f"bench {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 0
    command = COMMANDS.get(args.command) or {m.NAME: m.run for m in _command_modules()}[args.command]
    try:
        return command(args)
    except BenchError as exc:
        message = " ".join(str(exc).split())
        print(f"bench {args.command}: error: {message}", file=sys.stderr)
        return 1 if args.command == "leaderboard" else 2
    except KeyboardInterrupt:
        print("bench: interrupted; `bench run --resume latest` continues the run", file=sys.stderr)
        return 130
    except OSError as exc:  # a full disk under a writer that is not bench.core.atomic's: still one line
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        from bench.core.atomic import no_space_message

        print(f"bench {args.command}: error: {no_space_message(exc.filename or 'a file being written')}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
