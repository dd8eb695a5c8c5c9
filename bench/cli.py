"""The ``bench`` command line: ``ls``, ``run``, ``validate``, ``fuse``, ``leaderboard``, ``presets``.

User mistakes (a :class:`bench.errors.BenchError`) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from bench.errors import BenchError, ConfigError

DEFAULTS = {
    "dataset": "synthetic",
    "encoder": "cnn",
    "text_encoder": "minilm",
    "loss": "ntxent",
}
RUN_KEYS = ("dataset", "encoder", "text_encoder", "loss", "seed", "device", "results_dir", "runs_dir", "teachers", "init")
# Flags that map onto TrainSettings (flag dest -> field).
TRAIN_FLAGS = {
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "head_lr": "head_lr",
    "proj_dim": "proj_dim",
    "num_workers": "num_workers",
}


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
    run.add_argument("--dataset", help=f"dataset(s); a+b trains on the union, tests on b (default {DEFAULTS['dataset']})")
    run.add_argument("--encoder", help=f"audio encoder(s) (default {DEFAULTS['encoder']})")
    run.add_argument("--text-encoder", help=f"text encoder(s) (default {DEFAULTS['text_encoder']})")
    run.add_argument("--loss", help=f"loss(es) (default {DEFAULTS['loss']})")
    run.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE",
                     help="component option, e.g. passt.pretrained=false, or train.KEY=VALUE (repeatable)")
    run.add_argument("--preset", help="a preset name (see `bench presets`) or a .toml path; flags override it")
    run.add_argument("--epochs", type=int)
    run.add_argument("--batch-size", type=int)
    run.add_argument("--lr", type=float, help="learning rate of pretrained encoders")
    run.add_argument("--head-lr", type=float, help="learning rate of new layers and scratch encoders")
    run.add_argument("--proj-dim", type=int, help="shared embedding dimension (default 1024)")
    run.add_argument("--num-workers", type=int, help="DataLoader workers")
    run.add_argument("--seed", help="seed(s), comma-separated (default 0)")
    run.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    run.add_argument("--results-dir", help="where result JSONs go (default leaderboard/results)")
    run.add_argument("--runs-dir", help="where run directories go (default runs/)")
    run.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted run (or `latest`)")
    run.add_argument("--force", action="store_true", help="run combinations that already have results again")
    run.add_argument("--teachers", help="stage-1 run ids for --loss distill (ensemble of M teachers)")
    run.add_argument("--init", metavar="RUN_ID", help="initialise the student from this run's best checkpoint")
    run.add_argument("--launcher", choices=["none", "torchrun"], default="none",
                     help="torchrun: start --nproc processes with torchrun (DDP)")
    run.add_argument("--nproc", type=int, default=None, help="processes per node for --launcher torchrun")
    run.add_argument("--no-leaderboard", action="store_true", help="do not print or regenerate the leaderboard")

    val = sub.add_parser("validate", help="check a dataset's files and captions without training")
    val.add_argument("--dataset", required=True)
    val.add_argument("--set", action="append", default=[], metavar="NAME.KEY=VALUE")
    val.add_argument("--sample-rate", type=int, default=None, help="also check resampling to this rate")

    fuse = sub.add_parser("fuse", help="late fusion of the test scores of several runs")
    fuse.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    fuse.add_argument("--method", choices=["combsum", "rrf"], default="combsum")
    fuse.add_argument("--weights", help="comma-separated CombSUM weights, one per run")
    fuse.add_argument("--k", type=float, default=60.0, help="RRF constant (default 60)")
    fuse.add_argument("--results-dir", default="leaderboard/results")
    fuse.add_argument("--no-leaderboard", action="store_true")
    fuse.add_argument("--force", action="store_true", help="write a new result even if this fusion exists")

    board = sub.add_parser("leaderboard", help="render leaderboard/README.md from the result files")
    board.add_argument("--results-dir", default="leaderboard/results")
    board.add_argument("--output", default="leaderboard/README.md")
    board.add_argument("--check", action="store_true", help="exit 1 if the markdown is not current")
    board.add_argument("--plot", metavar="DIR", help="also draw one bar chart per benchmark into DIR")

    sub.add_parser("presets", help="list the presets `bench run --preset` accepts")
    return parser


def cmd_ls(args: argparse.Namespace) -> int:
    import inspect

    from bench.registry import HOOK_OF_KIND, get_registry

    registry = get_registry()
    for kind in HOOK_OF_KIND:
        print(f"{kind.replace('_', ' ')}{'es' if kind.endswith('s') else 's'}:")
        names = registry.names(kind)
        if not names:
            print("  (none)")
        for name in names:
            entry = registry.entries[kind][name]
            print(f"  {name:<16} {entry.distribution} {entry.version}" + (f" [{entry.plugin}]" if entry.plugin != name else ""))
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


def _merge_preset(args: argparse.Namespace) -> tuple[dict[str, Any], list[str], list[str]]:
    """Values from the preset, overridden by explicit flags; returns (values, preset sets, user sets)."""
    from bench.config import load_preset

    from bench.config import TrainSettings

    values: dict[str, Any] = {}
    sets: list[str] = []
    if args.preset:
        preset = load_preset(args.preset)
        allowed = set(RUN_KEYS) | set(TRAIN_FLAGS) | set(TrainSettings.keys())
        for key, value in preset["run"].items():
            key = key.replace("-", "_")
            if key not in allowed:
                raise ConfigError(f"{preset['path']}: unknown [run] key {key!r}; valid keys: {', '.join(sorted(allowed))}")
            values[key] = ",".join(str(v) for v in value) if isinstance(value, list) else value
        for key, value in _flatten(preset["set"]).items():
            sets.append(f"{key}={_preset_value(value)}")
    for key in (*RUN_KEYS, *TRAIN_FLAGS):
        value = getattr(args, key, None)
        if value is not None:
            values[key] = value
    return values, sets, list(args.set)


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"cnn": {"n_mels": 32}}`` (TOML's reading of ``cnn.n_mels = 32``) -> ``{"cnn.n_mels": 32}``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _preset_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def cmd_run(args: argparse.Namespace) -> int:
    from bench.config import build_grid, parse_set_options, split_list

    if args.launcher == "torchrun":
        return _relaunch_with_torchrun(args)
    _init_distributed()
    from bench.registry import get_registry
    from bench.runner import config_for_resume, latest_run, run_grid

    from bench.trainer import select_device

    if args.resume:
        runs_dir = Path(args.runs_dir or "runs")
        run_id = latest_run(runs_dir) if args.resume == "latest" else args.resume
        configs = [config_for_resume(run_id, runs_dir)]
        select_device(args.device or configs[0].device)  # fail before any data or model work
        if args.device:
            configs[0].device = args.device
        if args.results_dir:  # where the finished result goes may change; what is trained may not
            configs[0].results_dir = Path(args.results_dir)
    else:
        values, preset_sets, user_sets = _merge_preset(args)
        from bench.datasets import dataset_option_targets

        chosen = {key: split_list(values.get(key, default)) for key, default in DEFAULTS.items()}
        # A preset's options for a component that a flag replaced (e.g. --text-encoder minilm
        # instead of the preset's hf) no longer apply; a user's own stray --set is still an error.
        in_run = {"train", *chosen["encoder"], *chosen["text_encoder"], *chosen["loss"],
                  *(m for d in chosen["dataset"] for m in dataset_option_targets(d))}
        sets = [s for s in preset_sets if s.partition(".")[0] in in_run] + user_sets  # later --set wins
        train_overrides = {field: values[flag] for flag, field in TRAIN_FLAGS.items() if flag in values}
        for key in list(values):
            if key not in TRAIN_FLAGS and key not in RUN_KEYS:
                train_overrides[key] = values.pop(key)  # preset [run] keys naming TrainSettings fields
        select_device(values.get("device", "auto"))  # fail before any data or model work
        seeds = [_int(s, "--seed") for s in split_list(str(values.get("seed", "0")))]
        configs = build_grid(
            datasets=chosen["dataset"],
            encoders=chosen["encoder"],
            text_encoders=chosen["text_encoder"],
            losses=chosen["loss"],
            seeds=seeds,
            set_options=parse_set_options(sets),
            train_overrides=train_overrides,
            registry=get_registry(),
            device=values.get("device", "auto"),
            results_dir=Path(values.get("results_dir", "leaderboard/results")),
            runs_dir=Path(values.get("runs_dir", "runs")),
            teachers=tuple(split_list(values.get("teachers"))),
            init=values.get("init"),
            preset=args.preset,
        )
    results = run_grid(configs, force=args.force)
    from bench import distributed as dist

    if not args.no_leaderboard and results and dist.is_main_process():
        _show_leaderboard(configs[0].results_dir, results[-1])
    return 0


def _show_leaderboard(results_dir: Path, result: dict[str, Any]) -> None:
    from bench import leaderboard
    from bench.results import read_results

    results = read_results(results_dir)
    if any(r["run_id"] == result["run_id"] for r in results):
        print(leaderboard.dataset_table(results, result))
    if Path(results_dir).resolve() == Path(leaderboard.DEFAULT_RESULTS_DIR).resolve():
        path = leaderboard.write(results_dir, leaderboard.DEFAULT_OUTPUT)
        print(f"\nleaderboard written to {path}")


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected an integer or a comma-separated list of integers") from None


def _init_distributed() -> None:
    """Join the process group torchrun set up (WORLD_SIZE > 1); a no-op otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    import torch
    import torch.distributed as tdist

    if not tdist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        tdist.init_process_group(backend=backend)


def _relaunch_with_torchrun(args: argparse.Namespace) -> int:
    import shutil

    nproc = args.nproc or _default_nproc()
    argv = [a for a in sys.argv[1:]]
    cleaned, skip = [], False
    for index, token in enumerate(argv):
        if skip:
            skip = False
            continue
        if token in ("--launcher", "--nproc"):
            skip = True
            continue
        if token.startswith("--launcher=") or token.startswith("--nproc="):
            continue
        cleaned.append(token)
    torchrun = shutil.which("torchrun")
    command = ([torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"])
    command += ["--standalone", f"--nproc_per_node={nproc}", "-m", "bench", *cleaned]
    os.execv(command[0], command)
    return 0  # pragma: no cover


def _default_nproc() -> int:
    import torch

    return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 2


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.config import dataset_spec, parse_set_options
    from bench.datasets import build_dataset, dataset_option_targets
    from bench.registry import get_registry
    from bench.runner import SPLITS
    from bench.validate import validate_dataset

    registry = get_registry()
    set_options = parse_set_options(args.set)
    members = dataset_option_targets(args.dataset)
    stray = sorted(set(set_options) - set(members))
    if stray:
        raise ConfigError(f"--set {stray[0]}.…: {stray[0]!r} is not part of dataset {args.dataset!r}")
    skipping = all((set_options.get(m, {}).get("on_error") or "raise") == "skip" for m in members)
    for member in members:
        # Report every bad entry, including those a dataset would refuse while parsing.
        if "on_error" in registry.get("dataset", member).option_defaults():
            set_options.setdefault(member, {})["on_error"] = "skip"
    dataset = build_dataset(dataset_spec(registry, args.dataset, set_options), registry)
    reports = validate_dataset(dataset, SPLITS, sample_rate=args.sample_rate)
    bad_total = 0
    for name in SPLITS:
        report = reports[name]
        print(report.summary())
        for bad in report.bad:
            print(f"  {bad}")
        bad_total += len(report.bad)
    if bad_total:
        advice = ("a run skips them and lists them in its result" if skipping else
                  f"a run refuses this dataset unless --set {members[-1]}.on_error=skip")
        print(f"{bad_total} bad entr{'y' if bad_total == 1 else 'ies'}: {advice}")
        return 1
    print("dataset is valid")
    return 0


def cmd_fuse(args: argparse.Namespace) -> int:
    from bench.fusion import fuse_runs

    try:
        weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    except ValueError:
        raise ConfigError(f"--weights {args.weights!r}: expected comma-separated numbers, one per run") from None
    result = fuse_runs(args.run_ids, method=args.method, weights=weights, k=args.k, results_dir=Path(args.results_dir),
                       force=args.force)
    print(f"fused {len(args.run_ids)} runs with {args.method}: t2a mAP@10 {result['metrics']['t2a']['mAP@10'] * 100:.2f}"
          f" (result {result['run_id']})")
    if not args.no_leaderboard:
        _show_leaderboard(Path(args.results_dir), result)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench import leaderboard

    if args.check:
        leaderboard.check(Path(args.results_dir), Path(args.output))
        print(f"{args.output} is current")
        return 0
    path = leaderboard.write(Path(args.results_dir), Path(args.output))
    print(f"wrote {path}")
    if args.plot:
        from bench.results import read_results

        for image in leaderboard.plot(read_results(Path(args.results_dir)), Path(args.plot)):
            print(f"wrote {image}")
    return 0


def cmd_presets(_args: argparse.Namespace) -> int:
    from bench.config import available_presets, load_preset

    for name in available_presets():
        preset = load_preset(name)
        print(f"{name:<20} {preset.get('description', '')}")
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
    try:
        return COMMANDS[args.command](args)
    except BenchError as exc:
        message = " ".join(str(exc).split())
        print(f"bench {args.command}: error: {message}", file=sys.stderr)
        return 1 if args.command == "leaderboard" else 2
    except KeyboardInterrupt:
        print("bench: interrupted; `bench run --resume latest` continues the run", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
